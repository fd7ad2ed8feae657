r"""The nbgrader route: the workbook's notebooks as an nbgrader course's source notebooks.

``python -m mmtutor.grade --to-nbgrader COURSE`` writes ``COURSE/source/<assignment>/NN_name.ipynb`` (one
assignment per chapter, named after the notebook) and ``COURSE/nbgrader_config.py``; then, in ``COURSE``, with
nbgrader installed (it is not a dependency of the workbook)::

    nbgrader generate_assignment 00_introduction   # release/: the student copy, as make student writes it
    nbgrader autograde 00_introduction             # submitted/<student>/00_introduction/ -> autograded/
    nbgrader export                                # grades.csv, one score per student and assignment

Each solution cell becomes an nbgrader solution cell whose text is the student stub
(:func:`mmtutor.student.stub_source`) followed by the solution between ``### BEGIN SOLUTION`` and ``### END
SOLUTION``; the config sets nbgrader's code stub to nothing, so the released cell is exactly the stub of ``make
student``. Each check cell becomes an autograded test cell of one point, its check followed by ``assert
passed("Exercise N")``: nbgrader scores a cell as passed when it raises nothing, and a check that prints ``TODO``
raises nothing, so the assert turns a ``TODO`` into a failed test (a ``FAIL`` raises by itself). nbgrader's
autograde restores the test cells from its gradebook, so an edited check is graded as the original, as
:mod:`mmtutor.grade` does. What nbgrader gives is a score per cell; the message of each check is in the
autograded notebook's output, not in the score.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmtutor.student import CHECK_TAG, SOLUTION_TAG, exercise_number, stub_source

CONFIG = '''# nbgrader's configuration for the workbook's notebooks (written by python -m mmtutor.grade --to-nbgrader).
c = get_config()  # noqa: F821 - nbgrader defines it
c.CourseDirectory.course_id = "mmtutor"
# a solution cell holds its own stub before "### BEGIN SOLUTION": the released cell is that stub alone
c.ClearSolutions.code_stub = {"python": ""}
c.ExecutePreprocessor.timeout = 600  # seconds per cell
c.Execute.timeout = 600
'''


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def nbgrader_notebook(notebook: dict) -> dict:
    r"""A copy of ``notebook`` (nbformat JSON as a dict) with nbgrader's cell metadata: solution cells hold their
    stub and, between nbgrader's markers, their solution; check cells are autograded tests of one point that
    also assert the check passed. Outputs are cleared. A solution cell without ``# Exercise N`` raises
    ``ValueError``."""
    notebook = json.loads(json.dumps(notebook))
    current = None
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        tags = cell.get("metadata", {}).get("tags", [])
        source = _source(cell)
        if SOLUTION_TAG in tags:
            current = exercise_number(source)
            if current is None:
                raise ValueError(f"cell {index}: a solution cell starts with '# Exercise N: <task>'")
            cell["source"] = (stub_source(source, current) + "### BEGIN SOLUTION\n" + source.rstrip("\n")
                              + "\n### END SOLUTION\n")
            cell["metadata"]["nbgrader"] = {"grade": False, "solution": True, "locked": False, "task": False,
                                            "grade_id": f"exercise_{current}_answer_{index}", "schema_version": 3}
        elif CHECK_TAG in tags and current is not None:
            cell["source"] = (source.rstrip("\n") + "\n\nfrom mmtutor.exercises import passed as _passed\n\n"
                              f'assert _passed("Exercise {current}"), "Exercise {current} has not passed yet"\n')
            cell["metadata"]["nbgrader"] = {"grade": True, "solution": False, "locked": True, "task": False,
                                            "points": 1, "grade_id": f"exercise_{current}_check_{index}",
                                            "schema_version": 3}
    return notebook


def write_nbgrader_course(sources: Path, course: Path) -> list[Path]:
    r"""Write ``course/source/<stem>/<name>`` for each notebook of ``sources`` that has a solution cell, and
    ``course/nbgrader_config.py``; return the notebooks written."""
    written = []
    for path in sorted(Path(sources).glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if not any(SOLUTION_TAG in c.get("metadata", {}).get("tags", []) for c in notebook["cells"]):
            continue
        out = Path(course) / "source" / path.stem / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(nbgrader_notebook(notebook), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(out)
    (Path(course) / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    return written
