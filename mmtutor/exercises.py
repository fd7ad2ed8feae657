"""Checks for the exercises: compare a learner's answer with the reference and say what differs.

Three outcomes, on purpose:

* right: prints ``PASS Exercise N: ...`` and returns ``True``;
* not attempted yet (the answer is still ``...``, or the function still raises
  ``NotImplementedError`` as in the student copies): prints ``TODO Exercise N: ...`` and returns
  ``False``, so a student notebook runs to the end;
* wrong: raises :class:`ExerciseFailed` (an ``AssertionError``) whose message says what differed
  (type, shape, dtype, the first wrong entry) and gives a hint, so a wrong solution cannot pass
  unnoticed when the notebook is executed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch


class ExerciseFailed(AssertionError):
    """An answer was checked and is wrong; the message says how."""


def _fail(name: str, what: str, hint: str | None) -> None:
    __tracebackhide__ = True  # IPython and pytest hide this frame: the message is the point
    message = f"{name}: {what}"
    if hint:
        message += f"\n  hint: {hint}"
    raise ExerciseFailed(message)


def _not_done(name: str, hint: str | None) -> bool:
    print(f"TODO {name}: not done yet. Replace the stub with your answer and run this cell again."
          + (f" ({hint})" if hint else ""))
    return False


def _is_number(x: Any) -> bool:
    if isinstance(x, bool | np.bool_):
        return False
    if isinstance(x, int | float | np.integer | np.floating):
        return True
    return isinstance(x, torch.Tensor | np.ndarray) and x.ndim == 0 and x.dtype not in (torch.bool, np.bool_)


def _difference(answer: Any, expected: Any, atol: float, rtol: float, where: str = "") -> str | None:
    """``None`` if ``answer`` matches ``expected``, else a sentence saying what differs."""
    at = f" at {where}" if where else ""
    if isinstance(expected, torch.Tensor | np.ndarray) and getattr(expected, "ndim", 0) > 0:
        if isinstance(answer, np.ndarray | list | tuple) and isinstance(expected, torch.Tensor):
            return f"expected a torch.Tensor{at}, got {type(answer).__name__} (wrap it with torch.tensor(...))"
        if not isinstance(answer, torch.Tensor | np.ndarray):
            return f"expected a tensor of shape {tuple(expected.shape)}{at}, got {type(answer).__name__}"
        a = torch.as_tensor(answer).detach().cpu()
        e = torch.as_tensor(expected).detach().cpu()
        if tuple(a.shape) != tuple(e.shape):
            return f"expected shape {tuple(e.shape)}{at}, got {tuple(a.shape)}"
        if not (e.is_floating_point() or e.is_complex()):
            if a.is_floating_point():
                return f"expected an integer/bool tensor ({e.dtype}){at}, got {a.dtype}"
            wrong = (a.to(e.dtype) != e).nonzero()
            if len(wrong):
                i = tuple(wrong[0].tolist())
                return (f"{len(wrong)} of {e.numel()} entries differ{at}; first at index {i}: "
                        f"expected {e[i].item()}, got {a[i].item()}")
            return None
        a64, e64 = a.double(), e.double()
        if torch.isnan(a64).any() and not torch.isnan(e64).any():
            return f"your answer contains NaN{at} (a division by zero? a log of 0?)"
        close = torch.isclose(a64, e64, atol=atol, rtol=rtol, equal_nan=True)
        if not close.all():
            i = tuple((~close).nonzero()[0].tolist())
            gap = (a64 - e64).abs().nan_to_num(0).max().item()
            return (f"{int((~close).sum())} of {e.numel()} entries differ{at} (largest gap {gap:.3g}); "
                    f"first at index {i}: expected {e64[i].item():.6g}, got {a64[i].item():.6g}")
        return None
    if isinstance(expected, bool):
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = bool(answer.item())
        if not isinstance(answer, bool | np.bool_):
            return f"expected True or False{at}, got {type(answer).__name__}"
        return None if bool(answer) == expected else f"expected {expected}{at}, got {bool(answer)}"
    if _is_number(expected):
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        if not _is_number(answer):
            return f"expected a number{at}, got {type(answer).__name__}"
        a, e = float(answer), float(expected)
        if isinstance(expected, int | np.integer) and not float(a).is_integer():
            return f"expected a whole number{at}, got {a}"
        return None if math.isclose(a, e, rel_tol=rtol, abs_tol=atol) else f"expected {e:.6g}{at}, got {a:.6g}"
    if isinstance(expected, str):
        if not isinstance(answer, str):
            return f"expected a string{at}, got {type(answer).__name__}"
        same = answer.strip().lower() == expected.strip().lower()
        return None if same else f"expected {expected!r}{at}, got {answer!r}"
    if isinstance(expected, set | frozenset):
        if not isinstance(answer, set | frozenset | list | tuple):
            return f"expected a set{at}, got {type(answer).__name__}"
        missing, extra = set(expected) - set(answer), set(answer) - set(expected)
        if missing or extra:
            return f"the sets differ{at}: missing {sorted(map(str, missing))}, unexpected {sorted(map(str, extra))}"
        return None
    if isinstance(expected, Mapping):
        if not isinstance(answer, Mapping):
            return f"expected a dict{at}, got {type(answer).__name__}"
        if set(answer) != set(expected):
            return f"expected keys {sorted(map(str, expected))}{at}, got {sorted(map(str, answer))}"
        for key in expected:
            diff = _difference(answer[key], expected[key], atol, rtol, f"{where}[{key!r}]")
            if diff:
                return diff
        return None
    if isinstance(expected, Sequence):
        if not isinstance(answer, Sequence) or isinstance(answer, str):
            return f"expected a sequence of {len(expected)} items{at}, got {type(answer).__name__}"
        if len(answer) != len(expected):
            return f"expected {len(expected)} items{at}, got {len(answer)}"
        for i, (a, e) in enumerate(zip(answer, expected, strict=True)):
            diff = _difference(a, e, atol, rtol, f"{where}[{i}]")
            if diff:
                return diff
        return None
    return None if answer == expected else f"expected {expected!r}{at}, got {answer!r}"


def check(name: str, answer: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4,
          hint: str | None = None) -> bool:
    """Check a value: a number, bool, string, set, sequence, dict, or tensor (shape, dtype, values).

    ``answer`` left as ``...`` counts as not done yet (``TODO``, returns ``False``); a wrong answer raises
    :class:`ExerciseFailed`.
    """
    __tracebackhide__ = True
    if answer is Ellipsis:
        return _not_done(name, hint)
    diff = _difference(answer, expected, atol, rtol)
    if diff:
        _fail(name, diff, hint)
    print(f"PASS {name}: correct.")
    return True


def check_function(name: str, fn: Callable[..., Any], reference: Callable[..., Any],
                   make_inputs: Callable[[torch.Generator], tuple], *, trials: int = 3,
                   atol: float = 1e-5, rtol: float = 1e-4, hint: str | None = None) -> bool:
    """Run ``fn`` and ``reference`` on the same hidden random inputs and compare the results.

    ``make_inputs(generator)`` builds one tuple of arguments; it is called once per trial with a
    ``torch.Generator`` seeded by the trial number, so the check is repeatable. Each call gets its
    own copy of the inputs, so a function that changes its arguments in place cannot fool it. A stub (``...`` or
    ``NotImplementedError``) counts as not done yet; a wrong result or an error raises :class:`ExerciseFailed`.
    """
    __tracebackhide__ = True
    if fn is Ellipsis:
        return _not_done(name, hint)
    if not callable(fn):
        _fail(name, f"expected a function, got {type(fn).__name__}", hint)
    for trial in range(trials):
        generator = torch.Generator().manual_seed(trial)
        inputs = make_inputs(generator)
        copy = tuple(x.clone() if isinstance(x, torch.Tensor) else x for x in inputs)
        expected = reference(*inputs)
        try:
            answer = fn(*copy)
        except NotImplementedError:
            return _not_done(name, hint)
        except Exception as err:  # noqa: BLE001 - any error becomes a readable verdict
            shapes = ", ".join(str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__
                               for x in inputs)
            _fail(name, f"your function raised {type(err).__name__}: {err} (inputs: {shapes})", hint)
        diff = _difference(answer, expected, atol, rtol)
        if diff:
            _fail(name, f"on test input {trial + 1} of {trials}: {diff}", hint)
    print(f"PASS {name}: correct on {trials} hidden test inputs.")
    return True
