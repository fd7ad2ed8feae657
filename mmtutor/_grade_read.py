r"""Read the outcomes of an executed, merged notebook for :mod:`mmtutor.grade`, and write them: ``grades.csv`` and
the one-page ``summary.html``.

Each exercise gets one :class:`Grade`: the checks' own status lines (:func:`mmtutor.exercises.read_statuses`)
give ``PASS``, ``FAIL`` or ``TODO`` (the worst of its parts); ``ERROR`` when the answer cell raised, ran past its
limit, or never ran, or the check could not run (an error other than ``ExerciseFailed``) or printed no status.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmtutor._grade_kernel import GRADE_KEY
from mmtutor.exercises import read_statuses
from mmtutor.student import CHECK_TAG, SOLUTION_TAG, exercise_number

STATUSES = ("PASS", "FAIL", "TODO", "ERROR")
COLUMNS = ("student", "notebook", "exercise", "status", "message")


@dataclass(frozen=True)
class Grade:
    r"""One row of ``grades.csv``: ``exercise`` is the exercise's number, or ``""`` for a notebook that could
    not be graded at all (no source notebook of that name)."""

    student: str
    notebook: str
    exercise: int | str
    status: str
    message: str

    def row(self) -> list[str]:
        return [self.student, self.notebook, str(self.exercise), self.status, self.message]


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _number(cell: dict) -> int | None:
    return exercise_number(_source(cell))


def _outputs_text(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(_source({"source": output.get("text", "")}))
        elif output.get("output_type") == "error":
            parts.append(str(output.get("evalue", "")))
    return "\n".join(parts)


def _error(cell: dict) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _describe_error(error: dict) -> str:
    value = str(error.get("evalue", "")).strip().splitlines()
    return _one_line(f"{error.get('ename', 'Error')}: {value[0]}" if value else str(error.get("ename", "Error")))


def read_grades(executed: dict, student: str, notebook: str, numbers: Sequence[int]) -> list[Grade]:
    r"""The grades of one executed merged notebook: one per exercise of ``numbers`` (and any other exercise whose
    status a check printed), in order. A check cell belongs to the exercise whose solution cell precedes it."""
    stopped = executed.get("metadata", {}).get(GRADE_KEY, {}).get("stopped")
    solution: dict[int, dict] = {}
    checks: dict[int, list[dict]] = {}
    other_checks: list[dict] = []
    current = None
    for cell in executed["cells"]:
        if cell.get("cell_type") != "code":
            continue
        if SOLUTION_TAG in _tags(cell):
            current = _number(cell)
            if current is not None:
                solution.setdefault(current, cell)
        elif CHECK_TAG in _tags(cell):
            (checks.setdefault(current, []) if current is not None else other_checks).append(cell)
    statuses: dict[int, list] = {}
    for cell in [c for cells in checks.values() for c in cells] + other_checks:
        for status in read_statuses(_outputs_text(cell)):
            statuses.setdefault(status.number, []).append(status)
    grades = []
    for number in list(dict.fromkeys([*numbers, *sorted(statuses)])):
        status, message = _grade_one(solution.get(number), checks.get(number, []), statuses.get(number, []),
                                     stopped)
        grades.append(Grade(student, notebook, number, status, message))
    return grades


def _ran(cell: dict) -> bool:
    return cell.get("execution_count") is not None or bool(cell.get("outputs"))


def _not_finished(cell: dict, what: str, hint: str, stopped: str | None) -> str | None:
    """Why ``cell`` did not run to its end (timed out, running when the notebook stopped, never run), or None."""
    mark = cell.get("metadata", {}).get(GRADE_KEY, {})
    if mark.get("timed_out"):
        return f"{what} ran longer than {mark['timed_out']} s and was stopped{hint}"
    if mark.get("stopped_here"):
        return f"{what} was running when {stopped}{hint}"
    if not _ran(cell):
        return f"{what} was {f'not run: {stopped}' if stopped else 'not run'}"
    return None


def _grade_one(answer: dict | None, checks: list[dict], statuses: list, stopped: str | None) -> tuple[str, str]:
    if answer is not None:
        if (why := _not_finished(answer, "your answer cell", "", stopped)) is not None:
            return "ERROR", why
        if (error := _error(answer)) is not None:
            return "ERROR", f"your answer cell raised {_describe_error(error)}"
    for cell in checks:
        if (why := _not_finished(cell, "the check", " (a slow or endless answer?)", stopped)) is not None:
            return "ERROR", why
        error = _error(cell)
        if error is not None and not read_statuses(str(error.get("evalue", ""))):
            return "ERROR", f"the check could not run: {_describe_error(error)}"
    if not statuses:
        return "ERROR", "the check printed no status" if checks else "no check cell for this exercise"
    worst = next(s for s in ("FAIL", "TODO", "PASS") if any(st.status == s for st in statuses))
    chosen = [st for st in statuses if st.status == worst]
    messages = list(dict.fromkeys(st.message for st in chosen))
    if len(messages) > 1:  # the parts say different things: name each part
        messages = list(dict.fromkeys(f"({st.part}) {st.message}" if st.part else st.message for st in chosen))
    return worst, _one_line("; ".join(messages))


def write_csv(grades: Iterable[Grade], path: Path) -> None:
    r"""``grades`` as CSV with the header ``student, notebook, exercise, status, message``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(g.row() for g in grades)


_COLOURS = {"PASS": "#c8e6c9", "FAIL": "#ffcdd2", "TODO": "#eeeeee", "ERROR": "#ffe0b2"}


def summary_html(grades: Sequence[Grade], title: str = "Grades") -> str:
    r"""One self-contained HTML page: a row per student, a column per (notebook, exercise), each cell its status
    on its colour, the message on hover; a last column counts the passes."""
    columns = list(dict.fromkeys((g.notebook, g.exercise) for g in grades))
    people = list(dict.fromkeys(g.student for g in grades))
    table = {(g.student, g.notebook, g.exercise): g for g in grades}
    e = html.escape
    head = "".join(f"<th>{e(nb[:2])}<br>{'ex ' + str(ex) if ex != '' else '-'}</th>" for nb, ex in columns)
    rows = []
    for person in people:
        cells = []
        for nb, ex in columns:
            g = table.get((person, nb, ex))
            if g is None:
                cells.append('<td class="none">-</td>')
            else:
                cells.append(f'<td class="{g.status.lower()}" title="{e(g.message, quote=True)}">{g.status}</td>')
        passed = sum(g.status == "PASS" for g in grades if g.student == person)
        rows.append(f"<tr><th>{e(person)}</th>{''.join(cells)}<td>{passed} / {len(columns)}</td></tr>")
    notebooks = "".join(f"<li>{e(nb)}</li>" for nb in dict.fromkeys(g.notebook for g in grades))
    style = "".join(f"td.{s.lower()}{{background:{c}}}" for s, c in _COLOURS.items())
    legend = " ".join(f'<span class="key {s.lower()}">{s}</span>' for s in STATUSES)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #999;padding:4px 8px;text-align:center}}
{style}.key{{padding:2px 6px;border:1px solid #999}}
{''.join(f'.key.{s.lower()}{{background:{c}}}' for s, c in _COLOURS.items())}</style></head>
<body><h1>{e(title)}</h1>
<p>{legend} &mdash; PASS: right; FAIL: wrong (hover for the check's message); TODO: not done; ERROR: the answer
cell raised or ran past its time limit, or the check could not run. Details: grades.csv.</p>
<table><thead><tr><th>student</th>{head}<th>passed</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p>Notebooks:</p><ul>{notebooks}</ul></body></html>
"""


def write_summary(grades: Sequence[Grade], path: Path) -> None:
    r"""Write :func:`summary_html` of ``grades`` to ``path``."""
    Path(path).write_text(summary_html(grades, f"Grades: {Path(path).parent.name}"), encoding="utf-8")
