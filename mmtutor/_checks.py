r"""Boundary checks shared by every public function: one line each at the top of a function, so the
maths below stays in view.

Each check returns what it checked (so ``x = float_tensor("x", x, "(B, T, H)")`` reads as one step),
raises ``TypeError`` for the wrong kind of thing and ``ValueError`` for the wrong size or range, and
says what was expected and what came.

* :func:`positive_int`, :func:`number`, :func:`one_of`: plain arguments (sizes, rates, options);
* :func:`float_tensor`: a floating-point tensor with a given rank, written as a shape string;
* :func:`id_tensor`: integer ids in ``[0, vocab_size)``;
* :func:`bool_mask`: a bool mask on the right device;
* :func:`like`: a tensor on the device and with the dtype of another (the module's weights).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` must be an int (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def number(name: str, value: object, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False) -> float:
    """``value`` must be a finite real number in the interval given (``[low, high]``; ``*_open`` excludes an end)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "-inf" if low is None else f"{low}"
        right = "inf" if high is None else f"{high}"
        bounds = f"{'(' if low_open or low is None else '['}{left}, {right}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must lie in {bounds}, got {value!r}")
    return value


def one_of(name: str, value: object, options: tuple) -> object:
    """``value`` must be one of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def _rank(shape: str) -> int:
    return 0 if shape.strip("() ") == "" else len(shape.strip("() ").split(","))


def float_tensor(name: str, x: object, shape: str | None = None, *, min_ndim: int = 0) -> Tensor:
    """``x`` must be a floating-point tensor; ``shape`` (for example ``"(B, T, H)"``) fixes its rank."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if shape is not None and x.ndim != _rank(shape):
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    return x


def id_tensor(name: str, ids: object, vocab_size: int, shape: str | None = None) -> Tensor:
    """``ids`` must be an integer tensor (not bool) with every value in ``[0, vocab_size)``."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer ids, got {type(ids).__name__}")
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"{name} must have an integer dtype (torch.long), got {ids.dtype}")
    if shape is not None and ids.ndim != _rank(shape):
        raise ValueError(f"{name} must have shape {shape}, got {tuple(ids.shape)}")
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name} must lie in [0, {vocab_size}) for a vocabulary of size {vocab_size}, "
                             f"got {low if low < 0 else high}")
    return ids


def bool_mask(name: str, mask: object, device: torch.device) -> Tensor:
    """``mask`` must be a bool tensor on ``device`` (True = keep / may attend)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a bool torch.Tensor (True = keep), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must have dtype torch.bool (True = keep), got {mask.dtype}")
    if mask.device != torch.device(device):
        raise ValueError(f"{name} is on {mask.device} but the data is on {device}; move it with .to({device})")
    return mask


def like(name: str, x: Tensor, ref: Tensor, ref_name: str = "the weights") -> Tensor:
    """``x`` must have the dtype and the device of ``ref`` (usually a module's parameters)."""
    if x.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but {ref_name} are {ref.dtype}; convert one of them "
                        f"({name}.to({ref.dtype}) or module.to({x.dtype}))")
    if x.device != ref.device:
        raise ValueError(f"{name} is on {x.device} but {ref_name} are on {ref.device}")
    return x
