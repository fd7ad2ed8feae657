"""`make grade`: a class's notebooks run against the original checks, one student's crash, endless loop or exit
never stopping the others, and grades.csv / summary.html say exactly what each student did.

covers: mmtutor.grade (merge_submission, run_notebook, read_grades, grade_class, write_csv, summary_html, _main),
mmtutor._grade_nbgrader (nbgrader_notebook, write_nbgrader_course; with nbgrader itself when it is installed)
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmtutor._grade_nbgrader import nbgrader_notebook
from mmtutor.grade import COLUMNS, Grade, _main, exercise_numbers, grade_class, merge_submission, summary_html
from mmtutor.student import STUB_TAG, student_notebook

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "notebooks" / "00_introduction.ipynb"  # the quickest chapter


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _exercise_part(notebook: dict) -> dict:
    """The chapter cut to its setup cell and its exercise section (from the heading above the first solution cell
    on): the same solution and check cells, graded three times in well under a minute."""
    cells = notebook["cells"]
    first_solution = next(i for i, c in enumerate(cells) if "solution" in _tags(c))
    heading = max(i for i, c in enumerate(cells[:first_solution])
                  if c["cell_type"] == "markdown" and _source(c).startswith("## "))
    setup = next(c for c in cells if c["cell_type"] == "code")
    return {**notebook, "cells": [cells[0], setup, *cells[heading:]]}


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int], list[Grade]]:
    r"""Three students on chapter 0's exercises: ``ada`` got the first exercise wrong (and edited its check cell
    to print PASS), made the second crash (and deleted its check cell) and put an endless loop in the third,
    the rest right; ``ben`` answered nothing (the student copy as made); ``cy`` answered everything with the
    source's own solutions. Ada comes first, so her crash and loop run before the others are graded."""
    course = tmp_path_factory.mktemp("course")
    source = _exercise_part(json.loads(CHAPTER.read_text(encoding="utf-8")))
    (course / CHAPTER.name).write_text(json.dumps(source), encoding="utf-8")
    solutions = {c["id"]: _source(c) for c in source["cells"] if "solution" in _tags(c)}
    numbers = exercise_numbers(source)
    assert len(numbers) >= 3 and len(solutions) == len(numbers)

    blank = student_notebook(source)
    complete = json.loads(json.dumps(blank))
    for cell in complete["cells"]:
        if cell.get("id") in solutions:
            cell["source"] = solutions[cell["id"]]
    mixed = json.loads(json.dumps(complete))
    cells = mixed["cells"]
    answers = [c for c in cells if c.get("id") in solutions]
    wrong, crash, loop = answers[:3]
    stub = next(_source(c) for c in blank["cells"] if c.get("id") == wrong["id"])
    wrong["source"] = re.sub(r'raise NotImplementedError\("Exercise \d+"\)', "return -1", stub).replace("= ...", "= -1")
    crash["source"] = solutions[crash["id"]] + '\nraise RuntimeError("a bug in my answer")\n'
    loop["source"] = solutions[loop["id"]] + "\nwhile True:\n    pass\n"
    cells[cells.index(wrong) + 1]["source"] = f'print("PASS Exercise {numbers[0]}: correct.")'  # an edited check
    del cells[cells.index(crash) + 1]  # a deleted check

    submissions = tmp_path_factory.mktemp("submissions")
    for name, notebook in [("ada", mixed), ("ben", blank), ("cy", complete)]:
        (submissions / name).mkdir()
        (submissions / name / CHAPTER.name).write_text(json.dumps(notebook), encoding="utf-8")
    grades = grade_class(submissions, course, timeout=15, course_timeout=300, notebook_timeout=600, jobs=2)
    return submissions, numbers, grades


def test_grades_csv_says_what_each_student_did(graded):
    submissions, numbers, _ = graded
    rows = _read(submissions / "grades.csv")
    assert list(rows[0]) == list(COLUMNS)
    table = {(r["student"], int(r["exercise"])): (r["status"], r["message"]) for r in rows}
    assert len(table) == len(rows) == 3 * len(numbers)
    assert {r["notebook"] for r in rows} == {CHAPTER.name}
    first, second, third, *rest = numbers
    for n in numbers:
        assert table["ben", n][0] == "TODO" and table["ben", n][1].startswith("not done yet")
        assert table["cy", n][0] == "PASS"
    assert table["ada", first][0] == "FAIL"  # the original check, not the edited one that prints PASS
    assert table["ada", second] == ("ERROR", "your answer cell raised RuntimeError: a bug in my answer")
    assert table["ada", third] == ("ERROR", "your answer cell ran longer than 15 s and was stopped")
    for n in rest:  # the endless loop was interrupted: the notebook went on
        assert table["ada", n][0] == "PASS"
    for _, message in table.values():
        assert message and "\n" not in message


def test_summary_is_one_self_contained_page(graded):
    submissions, numbers, _ = graded
    page = (submissions / "summary.html").read_text(encoding="utf-8")
    assert page.count("<tr><th>") == 1 + 3 and all(f"<th>{name}</th>" in page for name in ("ada", "ben", "cy"))
    assert page.count('<td class="pass"') == len(numbers) + len(numbers) - 3
    assert page.count('<td class="todo"') == len(numbers) and page.count('<td class="error"') == 2
    assert "your answer cell raised RuntimeError" in page  # the message, on hover
    assert not re.search(r"(src|href)=|<script|@import|url\(", page), "nothing is loaded from elsewhere"


def test_the_executed_notebooks_are_kept(graded):
    submissions, _, _ = graded
    executed = json.loads((submissions / "_executed" / "ada" / CHAPTER.name).read_text(encoding="utf-8"))
    checks = [c for c in executed["cells"] if "check" in _tags(c)]
    original = [c for c in json.loads(CHAPTER.read_text())["cells"] if "check" in _tags(c)]
    assert [_source(c) for c in checks] == [_source(c) for c in original]  # re-inserted from the source


def test_merge_keeps_only_the_answers():
    source = {"cells": [
        {"cell_type": "code", "id": "s1", "metadata": {"tags": ["solution"]}, "source": "# Exercise 1: x\nx = 1\n",
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "id": "c1", "metadata": {"tags": ["check"]}, "source": "check(x)", "outputs": [],
         "execution_count": None},
        {"cell_type": "code", "id": "s2", "metadata": {"tags": ["solution"]}, "source": "# Exercise 2: y\ny = 2\n",
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "id": "s3", "metadata": {"tags": ["solution"]}, "source": "# Exercise 3: z\nz = 3\n",
         "outputs": [], "execution_count": None},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    submission = {"cells": [
        {"cell_type": "code", "id": "other", "metadata": {"tags": [STUB_TAG]}, "source": "# Exercise 2: y\ny = 5\n"},
        {"cell_type": "code", "id": "s1", "metadata": {"tags": [STUB_TAG]}, "source": "# Exercise 1: x\nx = 4\n"},
        {"cell_type": "code", "id": "c1", "metadata": {"tags": ["check"]}, "source": "print('PASS Exercise 1: ok')"},
    ]}
    merged = merge_submission(source, submission)
    assert [_source(c) for c in merged["cells"]] == [
        "# Exercise 1: x\nx = 4\n",  # by id
        "check(x)",  # the source's check, not the student's
        "# Exercise 2: y\ny = 5\n",  # by its first line
        "# Exercise 3: z\nz = ...\n",  # deleted by the student: the stub
    ]
    assert exercise_numbers(source) == [1, 2, 3]


EXITS = {"cells": [
    {"cell_type": "code", "id": f"{kind}{n}", "metadata": {"tags": [tag]}, "outputs": [], "execution_count": None,
     "source": src}
    for n in (1, 2, 3, 4)
    for kind, tag, src in [("s", "solution", f"# Exercise {n}: set a{n} to {n}\na{n} = {n}\n"),
                           ("c", "check", f'print("PASS Exercise {n}: right." if a{n} == {n} else "TODO Exercise {n}: '
                                          'not done yet.")')]
], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5}


def test_exit_and_a_dead_kernel_and_a_stubborn_loop_stop_one_notebook_only(tmp_path):
    course, submissions = tmp_path / "course", tmp_path / "submissions"
    course.mkdir()
    (course / "99_exits.ipynb").write_text(json.dumps(EXITS))
    answers = {
        "dee": {1: "import sys\nsys.exit(3)\n", 3: "import os\nos._exit(1)\n"},  # exit, then a dead kernel
        "eve": {2: "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n"
                   "        pass\n"},  # deaf to the interrupt: the notebook's own limit stops it
    }
    for name, changes in answers.items():
        notebook = json.loads(json.dumps(EXITS))
        for cell in notebook["cells"]:
            n = int(cell["id"][1:])
            if cell["id"][0] == "s" and n in changes:
                cell["source"] = f"# Exercise {n}: set a{n} to {n}\n" + changes[n]
        (submissions / name).mkdir(parents=True)
        (submissions / name / "99_exits.ipynb").write_text(json.dumps(notebook))
    (submissions / "gus").mkdir()
    (submissions / "gus" / "99_exits.ipynb").write_text("not a notebook")
    (submissions / "gus" / "42_unknown.ipynb").write_text(json.dumps(EXITS))
    assert _main([str(submissions), "--notebooks", str(course), "--timeout", "3", "--notebook-timeout", "40",
                  "--jobs", "2"]) == 0
    table = {(r["student"], r["notebook"], r["exercise"]): (r["status"], r["message"])
             for r in _read(submissions / "grades.csv")}
    status = {(s, e): v[0] for (s, nb, e), v in table.items() if nb == "99_exits.ipynb"}
    assert [status["dee", str(n)] for n in (1, 2, 3, 4)] == ["ERROR", "PASS", "ERROR", "ERROR"]
    assert table["dee", "99_exits.ipynb", "1"][1].startswith("your answer cell raised SystemExit")
    assert table["dee", "99_exits.ipynb", "3"][1] == "your answer cell was running when the kernel died"
    assert table["dee", "99_exits.ipynb", "4"][1] == "your answer cell was not run: the kernel died"
    assert [status["eve", str(n)] for n in (1, 2, 3, 4)] == ["PASS", "ERROR", "ERROR", "ERROR"]
    assert table["eve", "99_exits.ipynb", "2"][1] == \
        "your answer cell was running when the notebook ran past its limit of 40 s and was stopped"
    assert [status["gus", str(n)] for n in (1, 2, 3, 4)] == ["ERROR"] * 4
    assert table["gus", "42_unknown.ipynb", ""][0] == "ERROR"


def test_summary_html_escapes_and_counts():
    grades = [Grade("<b>", "00_x.ipynb", 1, "PASS", 'said "hi" <here>'), Grade("<b>", "00_x.ipynb", 2, "FAIL", "no")]
    page = summary_html(grades)
    assert "<th>&lt;b&gt;</th>" in page and 'title="said &quot;hi&quot; &lt;here&gt;"' in page
    assert "<td>1 / 2</td>" in page


# --- the nbgrader route -----------------------------------------------------------------------------------------

def _nbgrader() -> str | None:
    """nbgrader's command: $MMTUTOR_NBGRADER (an nbgrader installed elsewhere), else the one on PATH, if any."""
    return os.environ.get("MMTUTOR_NBGRADER") or shutil.which("nbgrader")


def test_nbgrader_source_releases_the_student_copy_and_tests_each_check():
    source = json.loads(CHAPTER.read_text(encoding="utf-8"))
    converted = nbgrader_notebook(source)
    student = student_notebook(source)
    numbers = exercise_numbers(source)
    answers = [c for c in converted["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    stubs = [c for c in student["cells"] if STUB_TAG in _tags(c)]
    originals = [c for c in source["cells"] if "solution" in _tags(c)]
    assert len(answers) == len(stubs) == len(originals) == len(numbers)
    for answer, stub, original in zip(answers, stubs, originals, strict=True):
        released, _, rest = _source(answer).partition("### BEGIN SOLUTION\n")
        assert released == _source(stub)  # nbgrader's code stub is "": what it releases is make student's stub
        assert rest == _source(original).rstrip("\n") + "\n### END SOLUTION\n"
    tests = [c for c in converted["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert len(tests) == sum("check" in _tags(c) for c in source["cells"])
    assert all(t["metadata"]["nbgrader"]["points"] == 1 and t["metadata"]["nbgrader"]["locked"] for t in tests)
    assert {re.search(r'_passed\("Exercise (\d+)"\)', _source(t)).group(1) for t in tests} == {str(n) for n in numbers}
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in converted["cells"] if "nbgrader" in c["metadata"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)


@pytest.mark.skipif(_nbgrader() is None, reason="nbgrader is not installed (not a dependency); set MMTUTOR_NBGRADER")
def test_nbgrader_route_grades_the_three_students(tmp_path):
    """The same three kinds of student through nbgrader: generate_assignment, autograde, export (offline)."""
    nbgrader = _nbgrader()
    course, notebooks = tmp_path / "course", tmp_path / "notebooks"
    notebooks.mkdir()
    source = _exercise_part(json.loads(CHAPTER.read_text(encoding="utf-8")))
    (notebooks / CHAPTER.name).write_text(json.dumps(source))
    assert _main(["--to-nbgrader", str(course), "--notebooks", str(notebooks)]) == 0
    kernel = tmp_path / "share" / "kernels" / "python3"  # the kernel runs this Python, wherever nbgrader lives
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                                             "{connection_file}"], "language": "python",
                                                    "display_name": "Python 3"}))
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "share"),
           "PATH": os.pathsep.join([str(Path(nbgrader).parent), os.environ["PATH"]])}
    name = CHAPTER.stem

    def run(*args: str) -> None:
        done = subprocess.run([nbgrader, *args], cwd=course, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    run("db", "assignment", "add", name)
    run("generate_assignment", name, "--force")
    release = json.loads((course / "release" / name / CHAPTER.name).read_text())
    solutions = [_source(c) for c in source["cells"] if "solution" in _tags(c)]
    for student in ("ada", "ben", "cy"):
        run("db", "student", "add", student)
        notebook, index = json.loads(json.dumps(release)), 0
        for cell in notebook["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("solution"):
                if student == "cy" or student == "ada" and index > 0:
                    cell["source"] = solutions[index]
                index += 1
            elif meta.get("grade") and student == "ada" and f'"Exercise {exercise_numbers(source)[0]}"' in \
                    _source(cell):
                cell["source"] = 'print("PASS Exercise 1: correct.")'  # an edited check: restored by nbgrader
        folder = course / "submitted" / student / name
        folder.mkdir(parents=True)
        (folder / CHAPTER.name).write_text(json.dumps(notebook))
        (folder / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    run("autograde", name, "--force")
    run("export")
    scores = {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in _read(course / "grades.csv")}
    total = float(len(exercise_numbers(source)))
    assert scores == {"ada": (total - 1, total), "ben": (0.0, total), "cy": (total, total)}
