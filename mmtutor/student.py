"""Write student copies of the notebooks: every ``solution`` cell becomes a stub.

Run it as ``python -m mmtutor.student notebooks student`` (``make student`` does).

A solution cell is a code cell tagged ``solution``. Its stub keeps what the learner must
provide and nothing of how:

* ``def f(args): ...`` keeps its signature and docstring; the body becomes
  ``raise NotImplementedError("Exercise N: write f")``;
* a class keeps its name, bases and method stubs (as above);
* ``name = <anything>`` becomes ``name = ...``  (the checks treat ``...`` as "not done yet");
* imports stay; every other statement (loops, prints) is dropped.

The exercise number N is read from the cell's first line (``# Exercise 3``); otherwise it is the
cell's position among the notebook's solution cells. Outputs and execution counts are removed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
from pathlib import Path

SOLUTION_TAG = "solution"
STUB_TAG = "exercise-stub"


def _names(target: ast.expr) -> list[str]:
    """The plain names bound by an assignment target (``a``, ``a, b``; not ``a[0]`` or ``a.b``)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _names(element)]
    return []


def _stub_function(node: ast.FunctionDef | ast.AsyncFunctionDef, number: int, indent: str) -> list[str]:
    bare = copy.copy(node)  # the signature alone: no decorators, no body
    bare.decorator_list, bare.body = [], [ast.Pass()]
    head = ast.unparse(bare).split("\n")[0]
    lines = [indent + head]
    doc = ast.get_docstring(node, clean=False)
    if doc is not None:
        lines.append(f'{indent}    """{doc}"""')
    lines.append(f'{indent}    raise NotImplementedError("Exercise {number}: write {node.name}")')
    return lines


def stub_source(source: str, number: int) -> str:
    """The student version of one solution cell's source."""
    tree = ast.parse(source)
    lines = [f"# Exercise {number}: your answer here. Run the check cell below when you are done."]
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            lines.append(ast.unparse(node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines += ["", *_stub_function(node, number, "")]
        elif isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            lines += ["", f"class {node.name}({bases}):" if bases else f"class {node.name}:"]
            methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            for method in methods:
                lines += _stub_function(method, number, "    ")
            if not methods:
                lines.append("    pass")
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for name in dict.fromkeys(n for t in targets for n in _names(t)):
                lines.append(f"{name} = ...  # Exercise {number}: replace ... with your answer")
    return "\n".join(lines) + "\n"


def student_notebook(notebook: dict) -> dict:
    """A copy of a notebook (nbformat JSON as a dict) with solutions stubbed and outputs removed."""
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
        found = re.match(r"\s*#\s*Exercise\s+(\d+)", source)
        number = int(found.group(1)) if found else count
        cell["source"] = stub_source(source, number).splitlines(keepends=True)
        cell["metadata"]["tags"] = [t for t in tags if t not in (SOLUTION_TAG, "hide-input")] + [STUB_TAG]
    return notebook


def write_student_copies(source_dir: Path, target_dir: Path) -> list[Path]:
    """Write a student copy of every ``*.ipynb`` in ``source_dir`` into ``target_dir``; a folder without
    notebooks raises ``FileNotFoundError``."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    notebooks = sorted(source_dir.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {source_dir}")
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        copy = student_notebook(json.loads(path.read_text(encoding="utf-8")))
        out = target_dir / path.name
        out.write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
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
