"""The instructor page (book/instructor.md): its code cell runs outside the book build and lists, for every
chapter, the lecture plan, the exercises and the wrong answers each check recognises, read from the notebooks and
the registry (so the page cannot drift from them); it is in the book's table of contents.

covers: book/instructor.md (its code cell), mmtutor.exercises.exercises_of as the page uses it
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import mmtutor.display
from mmtutor.exercises import exercises_of, has_exercise_module

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "instructor.md"


@pytest.fixture(scope="module")
def shown() -> tuple[list[str], list[tuple[list, list]]]:
    """What the page's code cell displays: its Markdown lines and its tables (rows, header)."""
    cells = re.findall(r"```\{code-cell\} python\n(?::[^\n]*\n)*\n?(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(cells) == 1
    lines: list[str] = []
    tables: list[tuple[list, list]] = []
    original = mmtutor.display.show_table
    mmtutor.display.show_table = lambda rows, header, *a, **k: tables.append(([list(r) for r in rows], list(header)))
    import IPython.display

    display = IPython.display.display
    IPython.display.display = lambda obj, *a, **k: lines.append(obj.data)
    try:
        exec(compile(cells[0], str(PAGE), "exec"), {})
    finally:
        mmtutor.display.show_table, IPython.display.display = original, display
    return lines, tables


def test_every_chapter_has_its_line_and_plan(shown):
    lines, tables = shown
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(lines) == len(chapters)
    plans = iter(rows for rows, header in tables if header == ["section", "minutes"])
    for path, line in zip(chapters, lines, strict=True):
        cells = json.loads(path.read_text())["cells"]
        assert f"(`{path.name}`)" in line
        minutes = [c["metadata"]["mmtutor"]["minutes"] for c in cells if "minutes" in c["metadata"].get("mmtutor", {})]
        if minutes:
            assert f"{sum(minutes)} minutes planned" in line
            sections = ["".join(c["source"]).splitlines()[0][3:].strip() for c in cells
                        if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("## ")]
            plan = next(plans)
            assert [s for s, _ in plan] == sections and sum(m for _, m in plan if m != "") == sum(minutes)
        else:
            assert "no lecture minutes yet" in line


def test_every_registered_exercise_and_wrong_answer_is_listed(shown):
    _, tables = shown
    listed = [row for rows, header in tables if header[1] == "check" for row in rows]
    wrong = [tuple(row) for rows, header in tables if header[1] == "typical wrong answer" for row in rows]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        number = int(path.name[:2])
        for info in exercises_of(number) if has_exercise_module(number) else []:
            assert [info.number, f"ch{number:02d}.{info.function}", info.tests] in listed
            for what, message in info.wrong_answers.items():
                assert (info.number, what, message) in wrong


def test_the_page_is_in_the_book():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    assert toc["parts"][-1]["chapters"][-1] == {"file": "book/instructor"}
    assert "{nb-exec-table}" in PAGE.read_text()
