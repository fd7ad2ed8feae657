"""`make student`: copies without solutions (no solution line, no docstring, no expected value) that still run to
the end and say, exercise by exercise, what is left to do.

covers: mmtutor.student (stub_source, student_notebook, leaked_answers, write_student_copies, on the real
notebooks), the chapter modules mmtutor.exercises.chNN (registered exercises against their notebooks)
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from mmtutor.exercises import exercises_of, has_exercise_module, read_statuses
from mmtutor.student import CHECK_TAG, STUB_TAG, leaked_answers, stub_source, student_notebook, write_student_copies

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONVERTED = [p for p in NOTEBOOKS if has_exercise_module(int(p.name[:2]))]  # chapters with an exercises module


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# --- the stub of one cell ----------------------------------------------------------------------------------------

SOLUTION = '''# Exercise 2: write forget_gate, and make Tiny double its input
import torch
from torch import nn


@torch.no_grad()
def forget_gate(x, h, W, b=None) -> torch.Tensor:
    """f = sigmoid(W [h, x] + b)."""
    z = torch.cat([h, x], dim=-1) @ W.T
    return torch.sigmoid(z + (0 if b is None else b))


class Tiny(nn.Module):
    """Doubles: y = 2 x."""
    factor = 2

    def forward(self, x):
        return x * 2

    @staticmethod
    def name():
        return "tiny"


answer, other = 3, [1, 2]
total: int = 7
for i in range(3):
    print(i)
with torch.no_grad():
    inside = torch.ones(2) * 5
'''


def test_stub_keeps_the_interface_and_drops_the_solution():
    stub = stub_source(SOLUTION)
    assert stub.startswith("# Exercise 2: write forget_gate, and make Tiny double its input\nimport torch\n")
    tree = ast.parse(stub)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert all(isinstance(c.func, ast.Name) and c.func.id == "NotImplementedError" for c in calls)
    assert "def forget_gate(x, h, W, b=None) -> torch.Tensor:" in stub
    assert 'raise NotImplementedError("Exercise 2")' in stub
    assert "class Tiny(nn.Module):" in stub and "def forward(self, x):" in stub
    assert "@staticmethod\n    def name():" in stub and "factor = ..." in stub
    for name in ("answer", "other", "inside"):
        assert f"\n{name} = ...\n" in stub
    assert "total: int = ...\n" in stub
    for leaked in ("torch.cat", "sigmoid", "x * 2", "print(i)", "= 3", "no_grad", "Doubles", '"""', "tiny", "* 5"):
        assert leaked not in stub
    namespace: dict = {}
    exec(compile(stub, "<stub>", "exec"), namespace)  # the stub itself runs
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        namespace["forget_gate"](1, 2, 3)
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        namespace["Tiny"]()(torch.ones(1))
    assert namespace["answer"] is Ellipsis and namespace["total"] is Ellipsis


def test_stub_of_a_value_and_of_a_dataclass():
    assert stub_source("# Exercise 4: predict the count\nn = 4 * 3 + 3  # W and b\n") == \
        "# Exercise 4: predict the count\nn = ...\n"
    stub = stub_source("# Exercise 5: a config\nfrom dataclasses import dataclass\n\n\n@dataclass\n"
                       "class Config:\n    \"\"\"Use 7.\"\"\"\n    size: int\n    rate: float = 0.5\n")
    assert "@dataclass\nclass Config:\n    size: int\n    rate: float = ...\n" in stub and "7" not in stub
    namespace: dict = {}
    exec(compile(stub, "<stub>", "exec"), namespace)
    assert namespace["Config"](3).rate is Ellipsis


def test_stub_needs_its_exercise_number():
    with pytest.raises(ValueError, match="# Exercise N"):
        stub_source("x = 1\n")
    assert stub_source("x = 1\n", 3) == "# Exercise 3\nx = ...\n"


def test_student_notebook_stubs_only_solution_cells_and_clears_outputs():
    notebook = {"cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# Title"]},
        {"cell_type": "code", "id": "b", "metadata": {}, "source": ["x = 1"], "outputs": [{"a": 1}],
         "execution_count": 3},
        {"cell_type": "code", "id": "c", "metadata": {"tags": ["solution", "hide-input"]},
         "source": ["# Exercise 1: the answer\n", "y = 2"], "outputs": [], "execution_count": None},
        {"cell_type": "code", "id": "d", "metadata": {"tags": ["check"]}, "source": ["ch00.exercise_1(y)"],
         "outputs": [{"text": "PASS"}], "execution_count": 4},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    student = student_notebook(notebook)
    assert notebook["cells"][1]["outputs"] == [{"a": 1}]  # the original is untouched
    assert [c["id"] for c in student["cells"]] == ["a", "b", "c", "d"]
    assert student["cells"][1]["source"] == ["x = 1"] and student["cells"][1]["outputs"] == []
    assert all(c.get("execution_count") is None and not c.get("outputs") for c in student["cells"])
    assert "".join(student["cells"][2]["source"]) == "# Exercise 1: the answer\ny = ...\n"
    assert student["cells"][2]["metadata"]["tags"] == [STUB_TAG]
    assert student["cells"][3]["source"] == ["ch00.exercise_1(y)"] and _tags(student["cells"][3]) == ["check"]
    json.dumps(student)


def test_leaked_answers_finds_the_declared_values_and_only_them():
    def notebook(*sources):
        return {"cells": [{"cell_type": "code", "source": [s], "outputs": []} for s in sources]}

    assert leaked_answers(notebook("n = 195"), [195]) == ["195"]
    assert leaked_answers(notebook("year 1950, share 0.195, 195.5, x195"), [195]) == []
    assert leaked_answers(notebook("the limit is 0.4583 here"), [0.4582986430168491]) == ["0.4583"]
    assert leaked_answers(notebook("lr = 0.45829864301684913"), [0.4582986430168491]) == []  # another number
    assert leaked_answers(notebook("lr = 0.4582986430168491"), [0.4582986430168491]) == ["0.4582986430168491"]
    assert leaked_answers(notebook("word = 'money'"), ["money"]) == ["'money'"]
    assert leaked_answers(notebook("is True; 3 of 5"), [True, 3, 0.5, None]) == []  # too common to search
    assert leaked_answers(notebook("w = [12, 34]"), [torch.tensor([12, 34])]) == ["[12, 34]", "12", "34"]
    printed = {"cell_type": "code", "source": [], "outputs": [{"name": "stdout", "text": ["count: 195\n"]}]}
    assert leaked_answers({"cells": [printed]}, [195]) == ["195"]


# --- the real notebooks -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def student_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("student")
    write_student_copies(ROOT / "notebooks", target)
    return target


def _solution_lines(path: Path) -> set[str]:
    """Lines of solution code (not signatures, imports or comments) and docstrings."""
    lines = set()
    for cell in json.loads(path.read_text())["cells"]:
        if "solution" not in _tags(cell):
            continue
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node)
                lines |= {line.strip() for line in (doc or "").splitlines() if len(line.strip()) > 12}
                if not isinstance(node, ast.ClassDef):
                    lines |= {ast.unparse(stmt).strip() for stmt in node.body[1 if doc is not None else 0:]}
            elif isinstance(node, ast.Module):
                lines |= {ast.unparse(stmt).strip() for stmt in node.body
                          if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For | ast.Expr)}
    return {line for line in lines if line and line != "pass"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_survives(student_dir, path):
    student = json.loads((student_dir / path.name).read_text())
    original = json.loads(path.read_text())["cells"]
    stubs = [c for c in student["cells"] if STUB_TAG in _tags(c)]
    assert len(stubs) == sum("solution" in _tags(c) for c in original)
    assert not any("solution" in _tags(c) for c in student["cells"])
    for cell in stubs:
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert ast.get_docstring(node) is None, f"{node.name} keeps its docstring"
                assert len(node.body) == 1 and isinstance(node.body[0], ast.Raise), f"{node.name} keeps code"
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                assert isinstance(node.value, ast.Constant) and node.value.value is Ellipsis
        comments = [line for line in "".join(cell["source"]).splitlines() if line.lstrip().startswith("#")]
        assert len(comments) == 1 and re.match(r"# Exercise \d+", comments[0]), "only the task line is a comment"
    student_code = "\n".join("".join(c["source"]) for c in student["cells"] if c["cell_type"] == "code")
    # a line the notebook itself shows outside its solutions (say, the buggy code an exercise fixes) is not a leak
    shown = "\n".join("".join(c["source"]) for c in original if "solution" not in _tags(c))
    leaked = [line for line in _solution_lines(path) if line in student_code and line not in shown]
    assert not leaked, f"solution code survives in the student copy: {leaked}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_check_cells_are_kept_as_they_are(student_dir, path):
    student = json.loads((student_dir / path.name).read_text())["cells"]
    original = json.loads(path.read_text())["cells"]
    assert [c["source"] for c in student if CHECK_TAG in _tags(c)] == \
        [c["source"] for c in original if CHECK_TAG in _tags(c)]


@pytest.mark.parametrize("path", CONVERTED, ids=lambda p: p.name)
def test_no_expected_value_survives(student_dir, path):
    values = [v for info in exercises_of(int(path.name[:2])) for v in info.expected_values()]
    leaked = leaked_answers(json.loads((student_dir / path.name).read_text()), values)
    assert not leaked, f"{path.name}'s student copy shows expected values: {leaked}"


@pytest.mark.parametrize("path", CONVERTED, ids=lambda p: p.name)
def test_each_registered_exercise_has_its_cells(path):
    chapter = int(path.name[:2])
    cells = json.loads(path.read_text())["cells"]
    solutions = {int(m.group(1)) for c in cells if "solution" in _tags(c)
                 if (m := re.match(r"# Exercise (\d+): \S", "".join(c["source"])))}
    checks = "\n".join("".join(c["source"]) for c in cells if CHECK_TAG in _tags(c))
    for info in exercises_of(chapter):
        assert info.number in solutions, f"exercise {info.number}: no solution cell '# Exercise N: <task>'"
        assert re.search(rf"\bch{chapter:02d}\.{info.function}\(", checks), f"no check cell calls {info.function}"


@pytest.mark.timeout(1800)  # a whole notebook in one test: chapters 8 and 9 take minutes
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_copy_runs_to_the_end_and_reports_todo(student_dir, path):
    notebook = nbformat.read(student_dir / path.name, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",  # per cell: the machine may be busy
                            resources={"metadata": {"path": str(student_dir)}})
    client.execute(env=dict(os.environ))  # raises CellExecutionError if any cell fails
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    statuses = read_statuses(outputs)
    numbers = {int(re.match(r"# Exercise (\d+)", c.source).group(1))
               for c in notebook.cells if STUB_TAG in c.metadata.get("tags", [])}
    assert numbers <= {s.number for s in statuses if s.status == "TODO"}, "each exercise's check says TODO"
    assert not [s for s in statuses if s.status != "TODO"], "a stub neither passes nor fails"
