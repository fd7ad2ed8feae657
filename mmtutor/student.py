r"""Write student copies of the notebooks: every ``solution`` cell becomes a stub that keeps the task, not the answer.

Run it as ``python -m mmtutor.student notebooks student`` (``make student`` does).

A solution cell is a code cell tagged ``solution`` whose first line is ``# Exercise N: <the task, in one
sentence>``. Its stub keeps what the learner must provide and nothing of how:

* the first line, as it is (the task sentence is written for the student);
* imports;
* ``def f(args) -> R:`` keeps its signature (defaults and annotations; decorators are dropped) but NOT its
  docstring, which usually states the answer; the body becomes ``raise NotImplementedError("Exercise N")``;
* a class keeps its name, bases, a ``dataclass`` decorator, its attributes bound to ``...`` and its methods as
  stubs (``staticmethod``, ``classmethod`` and ``property`` kept);
* every name the cell binds at the top level, even inside a loop or ``with`` block, becomes ``name = ...``
  (the checks treat ``...`` as "not done yet");
* nothing else survives: no statement, no comment, no docstring.

Cells tagged ``check`` (the one-line calls of the chapter's checks) are kept as they are, as is every other cell;
outputs and execution counts are removed everywhere, cell ids kept (a grader matches cells by id).

:func:`leaked_answers` finds, in a student copy, the expected values a chapter module declares
(:meth:`mmtutor.exercises.ExerciseInfo.expected_values`); the student-copy test requires it to find none.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SOLUTION_TAG = "solution"
STUB_TAG = "exercise-stub"
CHECK_TAG = "check"
_KEPT_METHOD_DECORATORS = {"staticmethod", "classmethod", "property"}
_FIRST_LINE = re.compile(r"\s*#\s*Exercise\s+(\d+)\b[^\n]*")


def _names(target: ast.expr) -> list[str]:
    """The plain names bound by an assignment target (``a``, ``a, b``, ``*a``; not ``a[0]`` or ``a.b``)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _names(element)]
    return []


def _bound_names(statements: list[ast.stmt]) -> list[str]:
    """Names assigned by ``statements`` and inside their loops, ``with``, ``if`` and ``try`` blocks (not inside
    functions, classes, lambdas or comprehensions), in order of appearance."""
    names: list[str] = []
    for node in statements:
        if isinstance(node, ast.Assign):
            names += [n for t in node.targets for n in _names(t)]
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            names += _names(node.target)
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for field in ("body", "orelse", "finalbody"):
                names += _bound_names(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                names += _bound_names(handler.body)
            for case in getattr(node, "cases", []):
                names += _bound_names(case.body)
    return list(dict.fromkeys(names))


def _decorator_name(decorator: ast.expr) -> str:
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _stub_function(node: ast.FunctionDef | ast.AsyncFunctionDef, number: int, method: bool) -> str:
    """The signature alone: no docstring, no body but ``raise NotImplementedError("Exercise N")``."""
    bare = copy.copy(node)
    bare.decorator_list = [d for d in node.decorator_list
                           if method and _decorator_name(d) in _KEPT_METHOD_DECORATORS]
    bare.body = [ast.parse("raise NotImplementedError(__EXERCISE__)").body[0]]
    return ast.unparse(bare).replace("__EXERCISE__", f'"Exercise {number}"')


def _stub_class(node: ast.ClassDef, number: int) -> str:
    bare = copy.copy(node)
    bare.decorator_list = [d for d in node.decorator_list if _decorator_name(d) == "dataclass"]
    body: list[str] = []
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            body += ([""] if body else []) + [_stub_function(item, number, method=True)]
        elif isinstance(item, ast.ClassDef):
            body.append(_stub_class(item, number))
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            value = "" if item.value is None else " = ..."
            body.append(f"{item.target.id}: {ast.unparse(item.annotation)}{value}")
        else:
            body += [f"{name} = ..." for name in _bound_names([item])]
    bare.body = [ast.Pass()]
    head = ast.unparse(bare).rsplit("\n", 1)[0]  # decorators and the class line, without the `pass`
    lines = "\n".join(body or ["pass"])
    return head + "\n" + "\n".join("    " + line if line else "" for line in lines.split("\n"))


def exercise_number(source: str) -> int | None:
    r"""``N`` of a solution cell's first line ``# Exercise N: ...``; ``None`` if it does not start so."""
    found = _FIRST_LINE.match(source)
    return int(found.group(1)) if found else None


def stub_source(source: str, number: int | None = None) -> str:
    r"""The student version of one solution cell's ``source``. ``number`` is read from the first line
    (``# Exercise N: ...``) unless given; a cell that neither starts so nor gets a number raises ``ValueError``,
    and code that does not parse raises ``SyntaxError``."""
    tree = ast.parse(source)
    found = _FIRST_LINE.match(source)
    if number is None:
        if found is None:
            raise ValueError(f"a solution cell starts with '# Exercise N: <task>', got {source[:60]!r}")
        number = int(found.group(1))
    lines = [found.group(0).strip() if found else f"# Exercise {number}"]
    lines += [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stub = _stub_class(node, number) if isinstance(node, ast.ClassDef) else _stub_function(node, number, False)
            lines += ["", "", stub]
            defined.add(node.name)
    assignments = []
    for node in tree.body:  # an annotated name keeps its annotation (the type the task asks for)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id not in defined:
            assignments.append(f"{node.target.id}: {ast.unparse(node.annotation)} = ...")
            defined.add(node.target.id)
    assignments += [f"{name} = ..." for name in _bound_names(tree.body) if name not in defined]
    if assignments:
        has_definitions = any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                              for node in tree.body)
        lines += (["", ""] if has_definitions else []) + assignments
    return "\n".join(lines) + "\n"


def student_notebook(notebook: dict) -> dict:
    r"""A copy of a notebook (nbformat JSON as a dict) with solutions stubbed and outputs removed. The solution
    cells' tags ``solution`` and ``hide-input`` become ``exercise-stub``; a solution cell without a
    ``# Exercise N`` first line takes its position among the solution cells as N."""
    notebook = json.loads(json.dumps(notebook))  # deep copy
    count = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG not in tags:
            continue
        count += 1
        source = "".join(cell["source"])
        number = exercise_number(source) or count
        cell["source"] = stub_source(source, number).splitlines(keepends=True)
        cell["metadata"]["tags"] = [t for t in tags if t not in (SOLUTION_TAG, "hide-input")] + [STUB_TAG]
    return notebook


def _renderings(value: Any) -> list[str]:
    """How an expected value could be written in a notebook: numbers with at least two significant digits (repr
    and 6 and 4 significant digits), strings in quotes, sequences whole and item by item."""
    if value is None or isinstance(value, bool):
        return []
    if hasattr(value, "tolist") and not isinstance(value, int | float):  # tensors, arrays, numpy scalars
        listed = value.tolist()
        return _renderings(listed) if not isinstance(listed, list) else [repr(listed)] + _renderings(listed)
    if isinstance(value, int) or isinstance(value, float) and math.isfinite(value) and value.is_integer():
        forms = [str(int(value))]
    elif isinstance(value, float) and math.isfinite(value):
        forms = [repr(value), f"{value:.6g}", f"{value:.4g}"]
    elif isinstance(value, str):
        return [repr(value), json.dumps(value)] if value.strip() else []
    elif isinstance(value, list | tuple | set | frozenset):
        return [repr(value)] + [form for item in value for form in _renderings(item)]
    else:
        return [repr(value)]
    return list(dict.fromkeys(f for f in forms if len(re.sub(r"^[-0.]+|\D", "", f)) >= 2))


def leaked_answers(notebook: dict, values: Iterable[Any]) -> list[str]:
    r"""The renderings of ``values`` found in the text of ``notebook``'s cells (sources and outputs): a number
    as a whole token (``195`` is not found in ``1950`` or ``0.195``), anything else as a substring. Booleans and
    numbers with fewer than two significant digits are not searched (they occur everywhere)."""
    text = "\n".join("".join(cell.get("source", "")) + "".join(
        "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
        for output in cell.get("outputs", [])) for cell in notebook["cells"])
    found = []
    for value in values:
        for form in _renderings(value):
            numeric = re.fullmatch(r"-?[\d.]+(e[-+]?\d+)?", form) is not None
            pattern = rf"(?<![\w.]){re.escape(form)}(?!\.?\d)" if numeric else re.escape(form)
            if re.search(pattern, text):
                found.append(form)
    return list(dict.fromkeys(found))


def write_student_copies(source_dir: Path, target_dir: Path) -> list[Path]:
    r"""Write a student copy of every ``*.ipynb`` in ``source_dir`` into ``target_dir``; a folder without
    notebooks raises ``FileNotFoundError``."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    notebooks = sorted(source_dir.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {source_dir}")
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        student = student_notebook(json.loads(path.read_text(encoding="utf-8")))
        out = target_dir / path.name
        out.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(out)
    return written


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="folder with the full notebooks")
    parser.add_argument("target", type=Path, help="folder for the student copies")
    args = parser.parse_args(argv)
    for path in write_student_copies(args.source, args.target):
        print(f"wrote {path}")


if __name__ == "__main__":
    _main()
