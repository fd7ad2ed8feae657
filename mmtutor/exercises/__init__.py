r"""Checks for the exercises: they accept any correct answer, say what is wrong without giving the answer away,
and hand out hints one at a time.

**Three outcomes.** A check returns ``None`` and prints or raises one status line, whose prefix is stable (a
grader reads executed notebooks with :func:`read_statuses` / :data:`STATUS_PATTERN`):

* ``PASS Exercise N: ...``: right (for a prediction, the measured value may follow, as ``feedback``);
* ``TODO Exercise N: not done yet ...``: the answer is still the stub (``...``, or a function that raises
  ``NotImplementedError`` as in the student copies), so a student notebook runs to the end;
* a wrong answer raises :class:`ExerciseFailed` (an ``AssertionError``), message ``FAIL Exercise N: <what is
  wrong>`` and the hints earned so far. What is wrong is said without the expected value: the type or shape the
  task asks for, ``3 of 12 entries are wrong, the first at index (0, 2)``, which property fails, or the message
  of a recognised typical mistake. A name is ``Exercise N`` or ``Exercise N (part)``.

**Staged hints.** ``hints=("general", "more precise", ...)``: the first wrong answer to an exercise shows hint 1,
the second hints 1-2, and so on (one attempt counter per exercise name in this kernel; :func:`reset_attempts`
starts over). Hints never state the expected value or the reference code. The older ``hint="..."`` is a
one-element ``hints``.

**The checks.**

* :func:`check` compares a value (number, bool, string, set, sequence, dict, tensor) with the expected one, which
  a chapter module computes at check time (never a literal typed into the notebook);
* :func:`check_function` runs the learner's function and the reference on hidden seeded inputs (several
  trials; ``make_inputs`` draws random sizes too) and compares the results;
* :func:`check_properties` checks ``(description, predicate)`` pairs, for answers that have no single right
  value (a trained model, a sampler, a mask); a failure names the description.

``mistakes=`` lets a check recognise typical wrong answers and print a message made for each: ``(message,
wrong value)`` for :func:`check`, ``(message, wrong function)`` for :func:`check_function` (the learner's result
equals the wrong function's on the failing input), ``(message, detector)`` for :func:`check_properties`
(``detector(answer)`` is true).

**Chapter modules.** ``mmtutor/exercises/chNN.py`` holds chapter NN's checks, references, probes and properties
(never the notebook); the notebook's check cell is one line, ``ch02.check_gru_step(gru_step)``. Each check is a
public function registered with :func:`exercise`, named ``check_<what>`` for what it checks (a name no other module
defines, as the architecture rule asks; ``exercise_N`` in every chapter would break it)::

    @exercise(1, tests="the L2 norm of each row, from elementwise operations",
              wrong_answers={"forgets the square root": SQUARED},
              answers=lambda: [...])  # literal values a value-type exercise expects, for the leak test
    def check_l2_norm(l2_norm) -> None:
        r\"\"\"Exercise 1: ``l2_norm(v)``, the length of each row of ``v``.\"\"\"
        check_function("Exercise 1", l2_norm, reference, make_inputs, mistakes=[(SQUARED, squared)], hints=(...))

The decorator appends ``tests`` and ``wrong_answers`` to the docstring; :func:`exercises_of` lists a chapter's
:class:`ExerciseInfo` (number, function, tests, wrong answers with their messages, summary, expected values) for
the instructor page; the student-copy test searches the student notebook for each
:meth:`ExerciseInfo.expected_values`. ``mmtutor/exercises/ch00.py`` is the worked example.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch

from mmtutor.exercises._compare import difference
from mmtutor.exercises._outcome import (
    STATUS_PATTERN,
    ExerciseFailed,
    Status,
    fail,
    parse_name,
    passed,
    passed_line,
    read_statuses,
    reset_attempts,
    staged_hints,
    todo,
)
from mmtutor.exercises._registry import ExerciseInfo, exercise, exercises_of, has_exercise_module

__all__ = [
    "STATUS_PATTERN", "ExerciseFailed", "ExerciseInfo", "Status", "check", "check_function", "check_properties",
    "exercise", "exercises_of", "has_exercise_module", "passed", "read_statuses", "reset_attempts",
]


def _is_stub(answer: Any) -> bool:
    """``...``, or a tuple/list with a ``...`` in it (``(weights, output)`` with one still to do)."""
    return answer is Ellipsis or isinstance(answer, tuple | list) and any(a is Ellipsis for a in answer)


def _private_copy(x: Any) -> Any:
    """A copy the learner's function may change in place without changing the reference's inputs."""
    if isinstance(x, torch.Tensor):
        return x.clone()
    try:
        return copy.deepcopy(x)
    except Exception:  # noqa: BLE001 - some objects (tokenizers, file handles) cannot be copied: share them
        return x


def _describe_inputs(inputs: tuple) -> str:
    def one(x: Any) -> str:
        if isinstance(x, torch.Tensor):
            return f"tensor {tuple(x.shape)} {str(x.dtype).removeprefix('torch.')}"
        if isinstance(x, bool | int | float) or isinstance(x, str) and len(x) <= 40:
            return repr(x)
        if isinstance(x, list | tuple):
            return f"{type(x).__name__} of {len(x)}"
        return type(x).__name__
    return ", ".join(one(x) for x in inputs)


def check(name: str, answer: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4,
          hints: Sequence[str] = (), hint: str | None = None, mistakes: Sequence[tuple[str, Any]] = (),
          feedback: str | None = None) -> None:
    r"""Check a value against ``expected``: a number (within ``|a - e| <= atol + rtol |e|``), bool, string
    (ignoring case and surrounding spaces), set, sequence, dict, or tensor (type, shape, dtype kind, values).

    ``answer`` still ``...`` prints ``TODO``; right prints ``PASS`` (then ``feedback``, if given); wrong raises
    :class:`ExerciseFailed` saying what is wrong, or the message of the first ``(message, wrong_value)`` of
    ``mistakes`` that the answer equals, and the hints earned. A malformed ``name`` raises ``ValueError``;
    ``hints`` as a string, or both ``hints`` and ``hint``, raise ``TypeError``.
    """
    __tracebackhide__ = True
    parse_name(name)
    hints = staged_hints(hints, hint)
    if _is_stub(answer):
        return todo(name)
    what = difference(answer, expected, atol, rtol)
    if what:
        what = next((message for message, wrong in mistakes if difference(answer, wrong, atol, rtol) is None), what)
        fail(name, what, hints)
    passed_line(name, "correct.", feedback)


def check_function(name: str, fn: Callable[..., Any], reference: Callable[..., Any],
                   make_inputs: Callable[[torch.Generator], tuple], *, trials: int = 3, atol: float = 1e-5,
                   rtol: float = 1e-4, hints: Sequence[str] = (), hint: str | None = None,
                   mistakes: Sequence[tuple[str, Callable[..., Any]]] = (), feedback: str | None = None) -> None:
    r"""Run ``fn`` and ``reference`` on the same hidden inputs and compare the results (as :func:`check` does).

    ``make_inputs(generator)`` returns one tuple of arguments; trial ``t`` calls it with a ``torch.Generator``
    seeded with ``t``, so the check is repeatable (draw the sizes from the generator too, so that an answer that
    works for one shape only fails). ``fn`` gets its own copy of the inputs, so changing them in place cannot
    fool the check. ``fn`` still ``...`` or raising ``NotImplementedError`` prints ``TODO``. A wrong result, or
    an error raised by ``fn``, raises :class:`ExerciseFailed` naming the trial and the inputs' shapes; when the
    result equals that of a ``(message, wrong_function)`` of ``mistakes`` on those inputs, the message says so.
    """
    __tracebackhide__ = True
    parse_name(name)
    hints = staged_hints(hints, hint)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an int >= 1, got {trials!r}")
    if fn is Ellipsis:
        return todo(name)
    if not callable(fn):
        fail(name, f"the answer should be a function, got {type(fn).__name__}", hints)
    for trial in range(trials):
        inputs = make_inputs(torch.Generator().manual_seed(trial))
        pristine = tuple(_private_copy(x) for x in inputs)  # before the reference, which might change its inputs
        expected = reference(*inputs)
        where = f"on hidden test input {trial + 1} of {trials} ({_describe_inputs(pristine)})"
        try:
            answer = fn(*(_private_copy(x) for x in pristine))
        except NotImplementedError:
            return todo(name)
        except Exception as err:  # noqa: BLE001 - any error becomes a readable verdict
            fail(name, f"{where}, your function raised {type(err).__name__}: {err}", hints)
        what = difference(answer, expected, atol, rtol)
        if what:
            for message, wrong in mistakes:
                try:
                    if difference(answer, wrong(*(_private_copy(x) for x in pristine)), atol, rtol) is None:
                        what = message
                        break
                except Exception:  # noqa: BLE001,S112 - a wrong variant that fails on this input recognises nothing
                    continue
            fail(name, f"{where}: {what}", hints)
    passed_line(name, f"correct on {trials} hidden test input{'s' if trials > 1 else ''}.", feedback)


def check_properties(name: str, answer: Any, properties: Sequence[tuple[str, Callable[[Any], Any]]], *,
                     hints: Sequence[str] = (), hint: str | None = None,
                     mistakes: Sequence[tuple[str, Callable[[Any], Any]]] = (), feedback: str | None = None) -> None:
    r"""Check that ``answer`` has every property: ``properties`` is a sequence of ``(description, predicate)``,
    checked in order, ``predicate(answer)`` true when the property holds. The description states the property
    (``"every row sums to 1"``); the failure names the first one that fails, never a value.

    ``answer`` still ``...``, or a predicate that meets ``NotImplementedError`` (a stub called), prints ``TODO``.
    A property that fails, or whose predicate raises, raises :class:`ExerciseFailed`; the message of the first
    ``(message, detector)`` of ``mistakes`` with ``detector(answer)`` true replaces the description. An empty
    ``properties`` raises ``ValueError``.
    """
    __tracebackhide__ = True
    parse_name(name)
    hints = staged_hints(hints, hint)
    properties = list(properties)
    if not properties or not all(isinstance(d, str) and callable(p) for d, p in properties):
        raise ValueError("properties must be a non-empty sequence of (description, predicate) pairs")
    if _is_stub(answer):
        return todo(name)
    for description, predicate in properties:
        try:
            holds = bool(predicate(answer))
            what = None if holds else f"not true of your answer: {description}"
        except NotImplementedError:
            return todo(name)
        except Exception as err:  # noqa: BLE001 - an answer that breaks a predicate fails that property
            what = f"could not check that {description}: {type(err).__name__}: {err}"
        if what:
            for message, detector in mistakes:
                try:
                    if detector(answer):
                        what = message
                        break
                except Exception:  # noqa: BLE001,S112 - a detector that fails recognises nothing
                    continue
            fail(name, what, hints)
    held = "the property holds" if len(properties) == 1 else f"all {len(properties)} properties hold"
    passed_line(name, f"correct: {held}.", feedback)
