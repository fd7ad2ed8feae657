r"""The registry of a chapter's exercises: what each one tests, the wrong answers it recognises, and its answers.

A chapter module (``mmtutor/exercises/chNN.py``) decorates each check with :func:`exercise`; :func:`exercises_of`
lists them for the instructor page, and :meth:`ExerciseInfo.expected_values` gives the values the student-copy
test must not find in the student notebook.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

_REGISTRY: dict[str, dict[int, ExerciseInfo]] = {}  # module name -> number -> info
ATTRIBUTE = "__exercise__"


@dataclass(frozen=True)
class ExerciseInfo:
    r"""One registered exercise. ``number``: N of ``Exercise N``; ``function``: the check's name
    (``check_<what>``, e.g. ``check_l2_norm``); ``module``: the chapter module's name; ``tests``: one sentence, what
    the exercise tests; ``wrong_answers``: typical wrong answer -> the message the check prints for it; ``summary``:
    the first paragraph of the check's own docstring; ``answers``: the literal expected values (or a function of no
    arguments that computes them), which must not appear in the student copy."""

    number: int
    function: str
    module: str
    tests: str
    wrong_answers: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    answers: Sequence[Any] | Callable[[], Sequence[Any]] = ()

    def expected_values(self) -> list[Any]:
        r"""The declared expected values, computed now if they were declared as a function."""
        values = self.answers() if callable(self.answers) else self.answers
        return list(values)


def _describe(doc: str | None, tests: str, wrong_answers: Mapping[str, str]) -> str:
    """The check's docstring followed by what it tests and the wrong answers it recognises."""
    lines = [inspect.cleandoc(doc)] if doc else []
    lines += ["", f"Tests: {tests}"]
    if wrong_answers:
        lines += ["", "Wrong answers it recognises, and what it prints for each:", ""]
        lines += [f"* {wrong}: ``{message}``" for wrong, message in wrong_answers.items()]
    return "\n".join(lines).lstrip("\n")


def exercise(number: int, *, tests: str, wrong_answers: Mapping[str, str] | None = None,
             answers: Sequence[Any] | Callable[[], Sequence[Any]] = ()) -> Callable[[Callable], Callable]:
    r"""Register a chapter module's check (``check_<what>``) as exercise ``number`` of its chapter.

    ``tests``: what the exercise tests, in one sentence; ``wrong_answers``: typical wrong answer -> the message the
    check prints for it (the check must really print it: pass the same strings to ``mistakes=``); ``answers``: the
    literal values a value-type exercise expects (or a function of no arguments returning them, for values that
    are costly to compute), searched for in the student copy by the leak test. The function is returned
    unchanged except for its docstring, which gains the ``tests`` and ``wrong_answers`` (the instructor page and
    the API reference read it). A number registered twice in one module, an empty ``tests``, or a message that
    is not a string raises ``ValueError``.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"an exercise number is an int >= 1, got {number!r}")
    if not isinstance(tests, str) or not tests.strip():
        raise ValueError("tests= must say, in a sentence, what the exercise tests")
    wrong_answers = dict(wrong_answers or {})
    if not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in wrong_answers.items()):
        raise ValueError("wrong_answers= maps a description of a wrong answer (str) to the message printed (str)")
    if not callable(answers) and (isinstance(answers, str) or not isinstance(answers, Sequence)):
        raise ValueError("answers= is a sequence of values (a list or tuple), or a function returning one")

    def register(fn: Callable) -> Callable:
        chapter = _REGISTRY.setdefault(fn.__module__, {})
        if number in chapter and chapter[number].function != fn.__qualname__:
            raise ValueError(f"{fn.__module__} registers exercise {number} twice "
                             f"({chapter[number].function} and {fn.__qualname__})")
        doc = inspect.cleandoc(fn.__doc__) if fn.__doc__ else ""
        info = ExerciseInfo(number, fn.__qualname__, fn.__module__, tests.strip(), wrong_answers,
                            doc.split("\n\n")[0].strip(), answers)
        chapter[number] = info
        setattr(fn, ATTRIBUTE, info)
        fn.__doc__ = _describe(fn.__doc__, info.tests, wrong_answers)
        return fn

    return register


def _module(chapter: int | str | ModuleType) -> ModuleType:
    if isinstance(chapter, ModuleType):
        return chapter
    if isinstance(chapter, int) and not isinstance(chapter, bool) and chapter >= 0:
        return importlib.import_module(f"mmtutor.exercises.ch{chapter:02d}")
    if isinstance(chapter, str) and chapter:
        return importlib.import_module(chapter if "." in chapter else f"mmtutor.exercises.{chapter}")
    raise ValueError(f"a chapter is its number (0), its module's name ('ch00') or the module, got {chapter!r}")


def exercises_of(chapter: int | str | ModuleType) -> list[ExerciseInfo]:
    r"""The exercises a chapter module registers, by number. ``chapter``: the chapter's number (``2`` imports
    ``mmtutor.exercises.ch02``), the module's name, or the module. A chapter without a module raises
    ``ModuleNotFoundError``; a chapter module that registers nothing gives ``[]``."""
    module = _module(chapter)
    return [info for _, info in sorted(_REGISTRY.get(module.__name__, {}).items())]


def has_exercise_module(number: int) -> bool:
    r"""Whether chapter ``number`` has a module ``mmtutor.exercises.chNN`` (without importing it)."""
    return importlib.util.find_spec(f"mmtutor.exercises.ch{number:02d}") is not None
