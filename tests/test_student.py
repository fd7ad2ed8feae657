"""`make student`: copies without solutions that still run to the end and say what is left to do.

covers: mmtutor.student (write_student_copies, on the real notebooks)
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mmtutor.student import STUB_TAG, write_student_copies

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("student")
    write_student_copies(ROOT / "notebooks", target)
    return target


def _solution_lines(path: Path) -> set[str]:
    """Lines of solution code (not signatures, docstrings, imports or comments)."""
    lines = set()
    for cell in json.loads(path.read_text())["cells"]:
        if "solution" not in cell.get("metadata", {}).get("tags", []):
            continue
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                lines |= {ast.unparse(stmt).strip() for stmt in body}
            elif isinstance(node, ast.Module):
                lines |= {ast.unparse(stmt).strip() for stmt in node.body
                          if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For | ast.Expr)}
    return {line for line in lines if line and line != "pass"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_survives(student_dir, path):
    copy = json.loads((student_dir / path.name).read_text())
    stubs = [c for c in copy["cells"] if STUB_TAG in c.get("metadata", {}).get("tags", [])]
    original = json.loads(path.read_text())["cells"]
    assert len(stubs) == sum("solution" in c.get("metadata", {}).get("tags", []) for c in original)
    assert not any("solution" in c.get("metadata", {}).get("tags", []) for c in copy["cells"])
    for cell in stubs:
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{node.name} keeps code"
            if isinstance(node, ast.Assign):
                assert isinstance(node.value, ast.Constant) and node.value.value is Ellipsis
    student_code = "\n".join("".join(c["source"]) for c in copy["cells"] if c["cell_type"] == "code")
    # a line the notebook itself shows outside its solutions (say, the buggy code an exercise fixes) is not a leak
    shown = "\n".join("".join(c["source"]) for c in original
                       if c["cell_type"] == "code" and "solution" not in c.get("metadata", {}).get("tags", []))
    leaked = [line for line in _solution_lines(path) if line in student_code and line not in shown]
    assert not leaked, f"solution code survives in the student copy: {leaked}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_copy_runs_to_the_end_and_reports_todo(student_dir, path):
    notebook = nbformat.read(student_dir / path.name, as_version=4)
    client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(student_dir)}})
    client.execute(env=dict(os.environ))  # raises CellExecutionError if any cell fails
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    n_stubs = sum(STUB_TAG in c.metadata.get("tags", []) for c in notebook.cells)
    assert outputs.count("TODO Exercise") >= n_stubs, "each check says its exercise is not done yet"
    assert "PASS Exercise" not in outputs
