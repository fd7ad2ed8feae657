r"""Grade a class: run every student's notebooks against the original checks and write a table of outcomes.

Run it as ``python -m mmtutor.grade SUBMISSIONS`` (``make grade SUBMISSIONS=dir`` does). ``SUBMISSIONS`` holds
one folder per student with the notebooks they filled in (student copies made by ``make student``, under the
source notebooks' file names, ``00_introduction.ipynb``); folders whose name starts with ``_`` or ``.`` are not
students. It writes

* ``SUBMISSIONS/grades.csv``: one row per student, notebook and exercise, columns ``student, notebook, exercise,
  status, message``; ``status`` is ``PASS``, ``FAIL`` or ``TODO`` as the exercise's check said, or ``ERROR``:
  the student's answer cell raised or ran past the time limit, or the check could not run;
* ``SUBMISSIONS/summary.html``: one page, one row per student, one column per exercise, coloured by status, the
  message on hover (self-contained: no script, no style sheet, no font from the network);
* ``SUBMISSIONS/_executed/<student>/<notebook>``: the notebooks as graded, with their outputs.

**What runs.** For each submitted notebook the grader takes the *source* notebook of the same name
(``notebooks/``) and keeps only the student's answer cells (code cells tagged ``solution`` in the source,
``exercise-stub`` in the student copy: matched by cell id, else by their first line ``# Exercise N``); every
other cell, the check cells included, comes from the source. A student who edited or deleted a check cell is
graded against the original check; an answer cell the student deleted counts as not done (the stub). Code a
student wrote outside the answer cells is not run: an answer must live in its cell.

**Isolation.** Each notebook runs in a fresh kernel, in a process of its own with a wall-clock limit
(``notebook_timeout``), in a working folder of its own. Answer and check cells have a per-cell limit
(``timeout``): past it the kernel is interrupted (``KeyboardInterrupt``) and the notebook goes on, so an
infinite loop costs one exercise; the course's own cells get ``course_timeout``. A cell that raises does not
stop the notebook (``allow_errors``); ``sys.exit()`` in a cell is an error of that cell (IPython catches it);
a kernel that dies (``os._exit``, a segmentation fault) or a notebook past its wall-clock limit ends that
notebook only, and the exercises it had not reached are ``ERROR``. The network is blocked in the kernel by the
test run's own mechanism: ``tests/offline/sitecustomize.py`` on ``PYTHONPATH`` refuses every connection that
leaves the machine (and Hugging Face libraries are told they are offline). This is not a sandbox: a student's
code runs with the grader's rights, so grade code you do not trust inside a container.

**nbgrader, the other route.** nbgrader (0.9.6 on PyPI) installs here from the registry and its
``generate_assignment``, ``autograde`` and ``export`` run offline (measured with the network blocked as above:
no connection attempted). ``python -m mmtutor.grade --to-nbgrader COURSE`` writes the notebooks as an nbgrader
course (:mod:`mmtutor._grade_nbgrader`): the released cells are exactly ``make student``'s stubs, each check
cell is a one-point test, and a ``TODO`` scores 0. This grader stays the default, and nbgrader is not a
dependency, because nbgrader is a course-management system around a gradebook database (SQLAlchemy, alembic,
its own JupyterLab extensions) whose grade is a score per cell, pass = the cell raised nothing; what a student
and an instructor need from these checks is the outcome *and its message* (``FAIL Exercise 2: you counted the
weight matrices only ...``), which this grader reads from the checks' own status lines
(:func:`mmtutor.exercises.read_statuses`) with nbclient, already in the pinned environment, and an answer
cell that crashes or loops is told apart from a wrong answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mmtutor import _grade_kernel
from mmtutor._grade_kernel import GRADE_KEY
from mmtutor._grade_read import (
    COLUMNS,
    STATUSES,
    Grade,
    _number,
    _source,
    _tags,
    read_grades,
    summary_html,
    write_csv,
    write_summary,
)
from mmtutor.student import SOLUTION_TAG, STUB_TAG, stub_source

__all__ = ["COLUMNS", "STATUSES", "Grade", "exercise_numbers", "grade_class", "merge_submission", "read_grades",
           "run_notebook", "students", "summary_html", "write_csv", "write_summary"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OFFLINE = ROOT / "tests" / "offline"  # sitecustomize.py: the network block shared with the test run
EXECUTED = "_executed"  # SUBMISSIONS/_executed/<student>/<notebook>: the notebooks as graded


def exercise_numbers(source: dict) -> list[int]:
    r"""The exercises of a source notebook: the numbers of its solution cells (``# Exercise N``), in order."""
    numbers = [n for c in source["cells"] if SOLUTION_TAG in _tags(c) if (n := _number(c)) is not None]
    return list(dict.fromkeys(numbers))


def merge_submission(source: dict, submission: dict) -> dict:
    r"""The notebook to grade: ``source``'s cells, each solution cell's code replaced by the student's answer.

    The student's answer to a solution cell is the student's code cell with the same id, else the first code
    cell tagged ``exercise-stub`` or ``solution`` whose first line is ``# Exercise N`` with the same N, else any
    code cell starting so; none (the student deleted it) gives the stub of the source cell, which the check
    reports as not done. Every other cell is the source's, outputs cleared; the merged solution cells keep the
    source's metadata (tag ``solution``)."""
    merged = json.loads(json.dumps(source))
    code = [c for c in submission.get("cells", []) if c.get("cell_type") == "code"]
    by_id = {c.get("id"): c for c in code if c.get("id")}
    tagged = [c for c in code if {STUB_TAG, SOLUTION_TAG} & set(_tags(c))]
    for cell in merged["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        if SOLUTION_TAG not in _tags(cell):
            continue
        number = _number(cell)
        answer = by_id.get(cell.get("id"))
        if answer is None and number is not None:
            answer = next((c for c in tagged if _number(c) == number), None) or \
                next((c for c in code if _number(c) == number), None)
        if answer is not None:
            cell["source"] = _source(answer)
        else:
            cell["source"] = stub_source(_source(cell), number)
            cell["metadata"][GRADE_KEY] = {"deleted": True}
    return merged


def _environment(netlog: Path) -> dict[str, str]:
    if not (OFFLINE / "sitecustomize.py").exists():
        raise FileNotFoundError(f"{OFFLINE / 'sitecustomize.py'} (the network block) is missing: run the grader "
                                "from a checkout of the workbook")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OFFLINE), str(ROOT), env.get("PYTHONPATH")]))
    env.update(MMTUTOR_NETLOG=str(netlog), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               MMTUTOR_PROGRESS="0", MPLBACKEND="agg", PYTHONUNBUFFERED="1")
    return env


def run_notebook(notebook: dict, out: Path, workdir: Path, *, timeout: float = 120, course_timeout: float = 900,
                 notebook_timeout: float = 3600) -> dict:
    r"""Execute ``notebook`` in a fresh kernel, in a process of its own, and return it with its outputs (also
    written to ``out``). Past ``notebook_timeout`` seconds the process and its kernel are killed and the
    notebook is returned as far as it got, with ``metadata.mmtutor_grade.stopped`` saying why."""
    import nbformat

    workdir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = workdir / "_to_grade.ipynb"
    source.write_text(json.dumps(notebook), encoding="utf-8")
    out.unlink(missing_ok=True)
    running = Path(str(out) + ".running")
    running.unlink(missing_ok=True)
    # this file run as it is, not imported from the package: the runner needs nbclient, not torch (seconds saved)
    code = (f"import runpy; runpy.run_path({_grade_kernel.__file__!r})['_run_one']({str(source)!r}, {str(out)!r}, "
            f"{str(workdir)!r}, {float(timeout)!r}, {float(course_timeout)!r})")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=workdir, env=_environment(workdir / "_netlog.txt"),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    stopped = None
    try:
        log, _ = process.communicate(timeout=notebook_timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the runner and its kernel: a session of their own
        log, _ = process.communicate()
        stopped = f"the notebook ran past its limit of {notebook_timeout:g} s and was stopped"
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # a kernel left behind by a runner that died
        except ProcessLookupError:
            pass
    if out.exists():
        try:
            result = nbformat.read(out, as_version=4)
        except Exception:  # noqa: BLE001 - killed while writing: start from the notebook as sent
            result = nbformat.from_dict(notebook)
    else:
        result = nbformat.from_dict(notebook)
        if stopped is None:
            tail = (log or b"").decode(errors="replace").strip().splitlines()[-3:]
            stopped = f"the notebook could not run (exit code {process.returncode}): {' '.join(tail)}"
    if stopped:
        result.metadata[GRADE_KEY] = {"stopped": stopped}
        if running.exists():  # the cell that was running when the process was stopped
            result.cells[int(running.read_text())].metadata.setdefault(GRADE_KEY, {})["stopped_here"] = True
    running.unlink(missing_ok=True)
    nbformat.write(result, out)
    return json.loads(json.dumps(result))


def _find_source(name: str, sources: Path) -> Path | None:
    exact = sources / name
    if exact.exists():
        return exact
    prefix = re.match(r"(\d\d)_", name)
    candidates = sorted(sources.glob(f"{prefix.group(1)}_*.ipynb")) if prefix else []
    return candidates[0] if len(candidates) == 1 else None


def students(submissions: Path) -> list[Path]:
    r"""The student folders of ``submissions``: its sub-folders not starting with ``_`` or ``.``, by name."""
    return sorted(p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def grade_class(submissions: Path, sources: Path = NOTEBOOKS, *, timeout: float = 120, course_timeout: float = 900,
                notebook_timeout: float = 3600, jobs: int = 1, log: bool = True) -> list[Grade]:
    r"""Grade every notebook of every student under ``submissions`` (see the module's docstring), write
    ``grades.csv`` and ``summary.html`` there, and return the grades, by student and notebook name. ``jobs``
    notebooks run at once (each in its own process and kernel). A folder with no student folder raises
    ``FileNotFoundError``."""
    submissions, sources = Path(submissions), Path(sources)
    folders = students(submissions)
    if not folders:
        raise FileNotFoundError(f"no student folders in {submissions} (one sub-folder per student)")
    work = [(folder, path) for folder in folders for path in sorted(folder.glob("*.ipynb"))]
    with tempfile.TemporaryDirectory(prefix="mmtutor-grade-") as scratch:
        def one(item: tuple[Path, Path]) -> list[Grade]:
            folder, path = item
            started = time.monotonic()
            found = _grade_notebook(folder.name, path, sources, submissions / EXECUTED / folder.name / path.name,
                                    Path(scratch) / folder.name / path.stem, timeout=timeout,
                                    course_timeout=course_timeout, notebook_timeout=notebook_timeout)
            if log:
                counts = " ".join(f"{s} {n}" for s in STATUSES if (n := sum(g.status == s for g in found)))
                print(f"{folder.name}/{path.name}: {counts} ({time.monotonic() - started:.0f} s)", flush=True)
            return found

        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:  # each job waits on a process of its own
            grades = [g for found in pool.map(one, work) for g in found]
    write_csv(grades, submissions / "grades.csv")
    write_summary(grades, submissions / "summary.html")
    return grades


def _grade_notebook(student: str, path: Path, sources: Path, out: Path, workdir: Path, **limits: float
                    ) -> list[Grade]:
    source_path = _find_source(path.name, sources)
    if source_path is None:
        return [Grade(student, path.name, "", "ERROR", f"no notebook of this name in {sources}")]
    source = json.loads(source_path.read_text(encoding="utf-8"))
    try:
        submission = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return [Grade(student, source_path.name, n, "ERROR", f"the submitted file is not a notebook: {err}")
                for n in exercise_numbers(source)]
    executed = run_notebook(merge_submission(source, submission), out, workdir, **limits)
    shutil.rmtree(workdir, ignore_errors=True)
    return read_grades(executed, student, source_path.name, exercise_numbers(source))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", type=Path, nargs="?", help="folder with one sub-folder of notebooks per student")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="the source notebooks (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per answer or check cell")
    parser.add_argument("--course-timeout", type=float, default=900, help="seconds per other cell")
    parser.add_argument("--notebook-timeout", type=float, default=3600, help="seconds per notebook, in all")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (default: %(default)s)")
    parser.add_argument("--to-nbgrader", type=Path, metavar="COURSE",
                        help="instead of grading: write the notebooks as an nbgrader course into COURSE")
    args = parser.parse_args(argv)
    if args.to_nbgrader is not None:
        from mmtutor._grade_nbgrader import write_nbgrader_course

        for path in write_nbgrader_course(args.notebooks, args.to_nbgrader):
            print(f"wrote {path}")
        print(f"then, in {args.to_nbgrader}: nbgrader generate_assignment NAME, nbgrader autograde NAME")
        return 0
    if args.submissions is None:
        parser.error("give the folder of submissions (or --to-nbgrader COURSE)")
    grades = grade_class(args.submissions, args.notebooks, timeout=args.timeout, course_timeout=args.course_timeout,
                         notebook_timeout=args.notebook_timeout, jobs=args.jobs)
    counts = ", ".join(f"{n} {s}" for s in STATUSES if (n := sum(g.status == s for g in grades)))
    print(f"{len(grades)} grades ({counts}): {args.submissions / 'grades.csv'}, {args.submissions / 'summary.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
