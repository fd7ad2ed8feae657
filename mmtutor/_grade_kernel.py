r"""Run one notebook for :mod:`mmtutor.grade`, in a process of its own: a fresh kernel, per-cell time limits,
the notebook written after each cell (so a parent that stops this process keeps what was done).

:mod:`mmtutor.grade` runs this file as it is (``runpy.run_path``), not imported through the package, so the
runner loads nbclient but not torch: it imports only the standard library at the top.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

GRADE_KEY = "mmtutor_grade"  # cell / notebook metadata: timed_out (s), stopped_here, deleted; stopped (why)
_STUDENT_TAGS = {"solution", "check"}  # cells of the student's answer and of its check: the short time limit


def _cell_timeout(cell: dict, timeout: float, course_timeout: float) -> int:
    student = _STUDENT_TAGS & set(cell.get("metadata", {}).get("tags", []))
    return max(1, int(round(timeout if student else course_timeout)))


def _run_one(path: str, out: str, cwd: str, timeout: float, course_timeout: float) -> None:
    r"""Execute the notebook at ``path`` in a fresh kernel, writing it to ``out`` after every cell (so a
    notebook stopped from outside keeps what it had done). :func:`mmtutor.grade.run_notebook` runs it in a
    child process."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    notebook = nbformat.read(path, as_version=4)
    started: dict[int, float] = {}
    running = Path(out + ".running")  # the index of the cell being run, for a parent that stops this process

    def on_start(cell, cell_index, **_):
        started[cell_index] = time.monotonic()
        running.write_text(str(cell_index))

    def on_executed(cell, cell_index, **_):
        limit = _cell_timeout(cell, timeout, course_timeout)
        if time.monotonic() - started.get(cell_index, time.monotonic()) >= limit:
            cell.metadata.setdefault(GRADE_KEY, {})["timed_out"] = limit
        nbformat.write(notebook, out)
        running.unlink(missing_ok=True)

    client = NotebookClient(
        notebook, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True, record_timing=False,
        timeout_func=lambda cell: _cell_timeout(cell, timeout, course_timeout),
        resources={"metadata": {"path": cwd}}, on_cell_start=on_start, on_cell_executed=on_executed)
    try:
        client.execute(env=dict(os.environ))
    except DeadKernelError:
        notebook.metadata[GRADE_KEY] = {"stopped": "the kernel died"}
        if running.exists():
            notebook.cells[int(running.read_text())].metadata.setdefault(GRADE_KEY, {})["stopped_here"] = True
    running.unlink(missing_ok=True)
    nbformat.write(notebook, out)
