r"""Say what is wrong with an answer compared with the reference, WITHOUT the reference's value.

:func:`difference` returns ``None`` when ``answer`` matches ``expected`` and otherwise one sentence that a learner
can act on: the type asked for, the shape or the number of items the task asks for (the task states them), how
many entries are wrong and where the first one is, NaN where none belongs, which items of the learner's own answer
do not belong (their own values, never the missing ones). It never formats a value taken from ``expected``: not an
entry, not a gap, not a member of a set, not a key that is missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


def _kind(x: Any) -> str:
    """A short description of what ``x`` is (its type, and its shape for a tensor or array)."""
    if isinstance(x, torch.Tensor | np.ndarray):
        return f"{type(x).__name__} of shape {tuple(x.shape)}"
    return type(x).__name__


def _is_number(x: Any) -> bool:
    if isinstance(x, bool | np.bool_):
        return False
    if isinstance(x, int | float | np.integer | np.floating):
        return True
    return isinstance(x, torch.Tensor | np.ndarray) and x.ndim == 0 and x.dtype not in (torch.bool, np.bool_)


def _listing(items: set) -> str:
    """The learner's own items, sorted, as ``['a', 'b']``."""
    return "[" + ", ".join(sorted(map(repr, items))) + "]"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _entries(n_wrong: int, total: int, index: tuple[int, ...], at: str) -> str:
    return f"{n_wrong} of {total} entries {'is' if n_wrong == 1 else 'are'} wrong{at}, the first at index {index}"


def _tensor(answer: Any, expected: torch.Tensor | np.ndarray, atol: float, rtol: float, at: str) -> str | None:
    if isinstance(answer, np.ndarray | list | tuple) and isinstance(expected, torch.Tensor):
        return f"the answer{at} should be a torch.Tensor, got {_kind(answer)} (wrap it with torch.tensor(...))"
    if not isinstance(answer, torch.Tensor | np.ndarray):
        return f"the answer{at} should be a tensor of shape {tuple(expected.shape)}, got {_kind(answer)}"
    a = torch.as_tensor(answer).detach().cpu()
    e = torch.as_tensor(expected).detach().cpu()
    if tuple(a.shape) != tuple(e.shape):
        return f"the answer{at} should have shape {tuple(e.shape)}, got {tuple(a.shape)}"
    if not (e.is_floating_point() or e.is_complex()):
        if a.is_floating_point() or a.is_complex():
            return f"the answer{at} should be an integer or bool tensor (like {e.dtype}), got {a.dtype}"
        wrong = (a.to(e.dtype) != e).nonzero()
        return _entries(len(wrong), e.numel(), tuple(wrong[0].tolist()), at) if len(wrong) else None
    a64 = a.to(torch.complex128 if a.is_complex() or e.is_complex() else torch.float64)
    e64 = e.to(a64.dtype)
    if torch.isnan(a64).any() and not torch.isnan(e64).any():
        return f"the answer{at} contains NaN (a division by zero? a log of 0?)"
    if torch.isinf(a64).any() and not torch.isinf(e64).any():
        return f"the answer{at} contains an infinity (an overflow? a log of 0?)"
    close = torch.isclose(a64, e64, atol=atol, rtol=rtol, equal_nan=True)
    if close.all():
        return None
    return _entries(int((~close).sum()), e.numel(), tuple((~close).nonzero()[0].tolist()), at)


def _number(answer: Any, expected: Any, atol: float, rtol: float, at: str) -> str | None:
    if isinstance(answer, torch.Tensor) and answer.numel() == 1 or isinstance(answer, np.ndarray) and answer.size == 1:
        answer = answer.item()
    if not _is_number(answer):
        return f"the answer{at} should be a number, got {_kind(answer)}"
    a, e = float(answer), float(expected)
    if isinstance(expected, int | np.integer) and not a.is_integer():
        return f"the answer{at} should be a whole number, got {a!r}"
    if math.isnan(a):
        return f"the answer{at} is NaN (a division by zero? a log of 0?)"
    if math.isclose(a, e, rel_tol=rtol, abs_tol=atol):
        return None
    return f"the number{at} is not right"


def _set(answer: Any, expected: set | frozenset, at: str) -> str | None:
    if not isinstance(answer, set | frozenset | list | tuple):
        return f"the answer{at} should be a set, got {_kind(answer)}"
    missing, extra = set(expected) - set(answer), set(answer) - set(expected)
    if not (missing or extra):
        return None
    parts = []
    if extra:
        parts.append(f"{_count(len(extra), 'of your items does', 'of your items do')} not belong: "
                     f"{_listing(extra)}")
    if missing:
        parts.append(f"{_count(len(missing), 'item is', 'items are')} missing")
    return f"the set{at} is not right: " + "; ".join(parts)


def _mapping(answer: Any, expected: Mapping, atol: float, rtol: float, where: str, at: str) -> str | None:
    if not isinstance(answer, Mapping):
        return f"the answer{at} should be a dict, got {_kind(answer)}"
    missing, extra = set(expected) - set(answer), set(answer) - set(expected)
    if missing or extra:
        parts = [f"{_count(len(missing), 'key is', 'keys are')} missing"] if missing else []
        parts += [f"these keys do not belong: {_listing(extra)}"] if extra else []
        return f"the keys of the dict{at} are not right: " + "; ".join(parts)
    for key in expected:
        diff = difference(answer[key], expected[key], atol, rtol, f"{where}[{key!r}]")
        if diff:
            return diff
    return None


def _sequence(answer: Any, expected: Sequence, atol: float, rtol: float, where: str, at: str) -> str | None:
    if not isinstance(answer, Sequence) or isinstance(answer, str):
        return f"the answer{at} should be a sequence of {len(expected)} items, got {_kind(answer)}"
    if len(answer) != len(expected):
        return f"the answer{at} should have {len(expected)} items, got {len(answer)}"
    for i, (a, e) in enumerate(zip(answer, expected, strict=True)):
        diff = difference(a, e, atol, rtol, f"{where}[{i}]")
        if diff:
            return diff
    return None


def difference(answer: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4, where: str = "") -> str | None:
    r"""``None`` if ``answer`` matches ``expected``, else a sentence saying what is wrong (never ``expected``'s value).

    Numbers and float tensors match within ``|a - e| <= atol + rtol |e|``; integer and bool tensors, bools, sets
    and dict keys exactly; strings ignoring case and surrounding spaces; sequences and dicts item by item (the
    sentence names the item, ``[1]`` or ``['key']``, as ``where``).
    """
    at = f" at {where}" if where else ""
    if isinstance(expected, torch.Tensor | np.ndarray) and expected.ndim > 0:
        return _tensor(answer, expected, atol, rtol, at)
    if isinstance(expected, bool | np.bool_):
        if isinstance(answer, torch.Tensor) and answer.numel() == 1 and answer.dtype == torch.bool:
            answer = bool(answer.item())
        if not isinstance(answer, bool | np.bool_):
            return f"the answer{at} should be True or False, got {_kind(answer)}"
        return None if bool(answer) == bool(expected) else f"the answer{at} is not right"
    if _is_number(expected):
        return _number(answer, expected, atol, rtol, at)
    if isinstance(expected, str):
        if not isinstance(answer, str):
            return f"the answer{at} should be a string, got {_kind(answer)}"
        return None if answer.strip().lower() == expected.strip().lower() else f"the string{at} is not right"
    if isinstance(expected, set | frozenset):
        return _set(answer, expected, at)
    if isinstance(expected, Mapping):
        return _mapping(answer, expected, atol, rtol, where, at)
    if isinstance(expected, Sequence):
        return _sequence(answer, expected, atol, rtol, where, at)
    if expected is None:
        return None if answer is None else f"the answer{at} is not right (got {_kind(answer)})"
    try:
        same = bool(answer == expected)
    except Exception:  # noqa: BLE001 - an answer that cannot even be compared is simply not right
        same = False
    return None if same else f"the answer{at} is not right (got {_kind(answer)})"
