r"""The three outcomes of a check, their status lines, and the staged hints (one attempt counter per exercise).

A status line starts with ``PASS``, ``TODO`` or ``FAIL``, then the exercise's name and a colon:
``PASS Exercise 3: correct on 3 hidden test inputs.``, ``TODO Exercise 3: not done yet ...``; a wrong answer raises
:class:`ExerciseFailed` whose message starts ``FAIL Exercise 3: ...``. A name is ``Exercise N``, optionally with a
part in parentheses (``Exercise 2 (weights)``). :data:`STATUS_PATTERN` matches these lines, for a grader that reads
executed notebooks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

NAME_PATTERN = re.compile(r"Exercise (\d+)(?: \(([^()\n]+)\))?")
STATUS_PATTERN = re.compile(r"^(PASS|TODO|FAIL) Exercise (\d+)(?: \(([^()\n]+)\))?: (.*)$", re.MULTILINE)

_attempts: dict[str, int] = {}  # name -> wrong answers so far in this kernel
_last: dict[str, str] = {}  # name -> "PASS", "TODO" or "FAIL": the latest outcome in this kernel


class ExerciseFailed(AssertionError):
    r"""A wrong answer. ``str(error)`` is ``FAIL Exercise N: <what is wrong>`` and then the hints shown at this
    attempt, one per line (``  hint 1: ...``). Attributes: ``name``, ``number``, ``part`` (``None`` or the part in
    parentheses), ``what`` (the sentence), ``hints`` (those shown), ``attempt`` (1 for the first wrong answer)."""

    def __init__(self, name: str, what: str, hints: Sequence[str], attempt: int) -> None:
        self.name, self.what, self.hints, self.attempt = name, what, tuple(hints), attempt
        self.number, self.part = parse_name(name)
        lines = [f"FAIL {name}: {what}"] + [f"  hint {i}: {h}" for i, h in enumerate(self.hints, 1)]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Status:
    r"""One status line read back from a notebook's output: ``status`` is ``PASS``, ``TODO`` or ``FAIL``."""

    status: str
    number: int
    part: str | None
    message: str


def parse_name(name: str) -> tuple[int, str | None]:
    r"""``"Exercise 2 (weights)"`` -> ``(2, "weights")``; a name of another form raises ``ValueError``."""
    if not isinstance(name, str) or not (found := NAME_PATTERN.fullmatch(name)):
        raise ValueError(f"an exercise name is 'Exercise N' or 'Exercise N (part)', got {name!r}")
    return int(found.group(1)), found.group(2)


def read_statuses(text: str) -> list[Status]:
    r"""Every status line in ``text`` (a notebook's outputs, an error's message), in order."""
    return [Status(m.group(1), int(m.group(2)), m.group(3), m.group(4)) for m in STATUS_PATTERN.finditer(text)]


def staged_hints(hints: Sequence[str] | str, hint: str | None) -> tuple[str, ...]:
    r"""The hints of a check: ``hints`` (a sequence, most general first) or the older single ``hint=``."""
    if isinstance(hints, str):
        raise TypeError("hints must be a sequence of strings (a tuple or a list), not one string; "
                        "for a single hint write hints=(\"...\",)")
    if hint is not None and hints:
        raise TypeError("give either hints=(...) or the older hint=\"...\", not both")
    hints = tuple(hints) if hint is None else (hint,)
    if not all(isinstance(h, str) and h for h in hints):
        raise TypeError("every hint must be a non-empty string")
    return hints


def todo(name: str) -> None:
    r"""The answer is still the stub: say so, and let the notebook run on."""
    _last[name] = "TODO"
    print(f"TODO {name}: not done yet. Replace the stub (... or NotImplementedError) with your answer, "
          "then run this cell again.")


def passed_line(name: str, how: str, feedback: str | None) -> None:
    r"""The answer is right: ``PASS`` and, for a prediction, what was measured (no longer a leak)."""
    _last[name] = "PASS"
    print(f"PASS {name}: {how}" + (f" {feedback}" if feedback else ""))


def fail(name: str, what: str, hints: Sequence[str]) -> None:
    r"""The answer is wrong: raise :class:`ExerciseFailed` with the hints this attempt has earned (the first
    ``k`` hints at the ``k``-th wrong answer to this exercise in this kernel)."""
    __tracebackhide__ = True  # IPython and pytest hide this frame: the message is the point
    _last[name] = "FAIL"
    attempt = _attempts[name] = _attempts.get(name, 0) + 1
    raise ExerciseFailed(name, what, hints[:attempt], attempt)


def passed(name: str) -> bool:
    r"""Whether the latest check of ``name`` in this kernel passed (``False`` if it was never checked)."""
    parse_name(name)
    return _last.get(name) == "PASS"


def reset_attempts(name: str | None = None) -> None:
    r"""Forget the wrong attempts (and outcomes) of ``name``, or of every exercise: the hints start over."""
    for store in (_attempts, _last):
        if name is None:
            store.clear()
        else:
            store.pop(name, None)
