r"""Boundary checks shared by every public function: one line each at the top of a function, so the
maths below stays in view.

Each check returns what it checked (so ``x = float_tensor("x", x, "(B, T, H)")`` reads as one step),
raises ``TypeError`` for the wrong kind of thing and ``ValueError`` for the wrong size or range, and
says what was expected and what came.

* :func:`positive_int`, :func:`number`, :func:`one_of`, :func:`instance`: plain arguments (sizes, rates,
  options, configs);
* :func:`float_tensor`: a floating-point tensor with a given rank, written as a shape string, and named
  sizes (``float_tensor("x", x, "(B, T, H)", H=4)``);
* :func:`id_tensor`: integer ids in ``[0, vocab_size)``; :func:`int_tensor`: integers in a range (lengths);
* :func:`has_shape`: any tensor with a shape string and named sizes; :func:`shapes`: several tensors whose
  shapes share symbols (``"v (B, D), u (B, K, D)"``);
* :func:`bool_mask`: a bool mask on the right device; :func:`broadcasts_to`, :func:`broadcast`: shapes
  that broadcast;
* :func:`like`: a tensor on the device and with the dtype of another (the module's weights);
  :func:`same_dtype_and_device`: several tensors on one device with one dtype.

A shape string lists one symbol per dimension, ``"(B, T, H)"``; it may start with ``...`` for any number of
leading dimensions (``"(..., T_q, d_k)"``). A number in it (``"(1, B, H)"``) and the sizes passed by name
(``H=4``) must match; the message then shows the shape filled in, ``(B, T, 4)``.
"""

from __future__ import annotations

import functools
import math
import re

import torch
from torch import Tensor


class DtypeError(TypeError, ValueError):
    """A tensor of the wrong dtype (float where ids belong, integers where floats do). Both a ``TypeError``
    (the wrong kind of tensor) and a ``ValueError`` (a wrong value: chapter 1's contract promises ``ValueError``
    for ids of a non-integer dtype), as numpy's ``AxisError`` is both a ``ValueError`` and an ``IndexError``."""


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` must be an int (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{' (a positive int)' if minimum == 1 else ''}, "
                         f"got {value!r}")
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


def instance(name: str, value: object, cls: type | tuple[type, ...], what: str | None = None) -> object:
    """``value`` must be an instance of ``cls``; ``what`` names it in the message (default: the class name)."""
    if not isinstance(value, cls):
        if what is None:
            names = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
            what = f"{'an' if names[0] in 'AEIOU' else 'a'} {names}"
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value


@functools.cache  # shape strings are literals in the code: parse each once (hot in generation)
def _dims(shape: str) -> tuple[str, ...]:
    return tuple(d.strip() for d in shape.strip("() ").split(",") if d.strip())


def _broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """NumPy's broadcasting rule in plain Python (``torch.broadcast_shapes`` costs more than the maths it guards
    in a decoding step): the broadcast shape, or ``None`` when the shapes do not broadcast."""
    out = []
    for i in range(1, max(map(len, shapes), default=0) + 1):
        sizes = {s[-i] for s in shapes if len(s) >= i} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(reversed(out))


def _rank(shape: str) -> int:
    return len(_dims(shape))


def has_shape(name: str, x: Tensor, shape: str, **sizes: int) -> Tensor:
    """``x`` (any tensor) must have the rank of ``shape`` and the sizes given by name."""
    dims = _dims(shape)
    leading = dims[:1] == ("...",)
    fixed = dims[1:] if leading else dims
    unknown = set(sizes) - set(fixed)
    if unknown:  # a mistake of the caller, not of the data
        raise KeyError(f"sizes {sorted(unknown)} are not symbols of the shape {shape}")
    expected = shape
    if sizes:
        filled = [str(sizes.get(d, d)) for d in dims]
        expected += f" = ({', '.join(filled)}{',' if len(filled) == 1 else ''})"
    if (x.ndim < len(fixed)) if leading else (x.ndim != len(fixed)):
        at_least = f" (at least {len(fixed)} dimensions)" if leading else ""
        raise ValueError(f"{name} must have shape {expected}{at_least}, got {tuple(x.shape)}")
    for i, (symbol, size) in enumerate(zip(fixed, x.shape[x.ndim - len(fixed):], strict=True)):
        want = int(symbol) if symbol.isdigit() else sizes.get(symbol)
        if want is not None and size != want:
            where = f"{symbol} =" if symbol in sizes else f"dimension {x.ndim - len(fixed) + i} ="
            where = "last dimension" if i == len(fixed) - 1 else where
            raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)} ({where} {want}, not {size})")
    return x


def float_tensor(name: str, x: object, shape: str | None = None, *, min_ndim: int = 0, **sizes: int) -> Tensor:
    """``x`` must be a floating-point tensor; ``shape`` (for example ``"(B, T, H)"``) fixes its rank, and sizes
    given by name (``H=4``) fix those dimensions."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise DtypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if shape is not None:
        has_shape(name, x, shape, **sizes)
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    return x


def _integer(name: str, x: object, kind: str, hint: str = "") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of {kind}, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
        raise DtypeError(f"{name} must have an integer dtype (torch.long), got {x.dtype}{hint}")


def id_tensor(name: str, ids: object, vocab_size: int, shape: str | None = None, **sizes: int) -> Tensor:
    """``ids`` must be an integer tensor (not bool) with every value in ``[0, vocab_size)``; a float or bool
    dtype raises :class:`DtypeError` (a ``TypeError`` and a ``ValueError``)."""
    _integer(name, ids, "integer ids", f"; ids index the rows of a vocabulary of size {vocab_size}")
    if shape is not None:
        has_shape(name, ids, shape, **sizes)
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name} must lie in [0, {vocab_size}) for a vocabulary of size {vocab_size}, "
                             f"got {low if low < 0 else high}")
    return ids


def int_tensor(name: str, x: object, shape: str | None = None, *, low: int | None = None,
               high: int | None = None, **sizes: int) -> Tensor:
    """``x`` must be an integer tensor (not bool) with every value in ``[low, high]`` (both ends included)."""
    _integer(name, x, "integers")
    if shape is not None:
        has_shape(name, x, shape, **sizes)
    if x.numel() and (low is not None or high is not None):
        smallest, largest = int(x.min()), int(x.max())
        if (low is not None and smallest < low) or (high is not None and largest > high):
            raise ValueError(f"{name} must lie in [{'-inf' if low is None else low}, {'inf' if high is None else high}]"
                             f", got min {smallest}, max {largest}")
    return x


def shapes(spec: str, *tensors: object) -> dict[str, int]:
    """Several tensors whose shapes share symbols: ``shapes("v (B, D), u (B, K, D)", v, u)`` checks that ``v`` and
    ``u`` are tensors of those ranks with one ``B`` and one ``D`` between them; returns the sizes by symbol."""
    entries = re.findall(r"(\w+) (\([^)]*\))", spec)
    if not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{', '.join(n for n, _ in entries)} must be tensors, got "
                        f"{', '.join(type(t).__name__ for t in tensors)}")
    sizes: dict[str, int] = {}
    for (_, layout), t in zip(entries, tensors, strict=True):
        dims = _dims(layout)
        fits = t.ndim == len(dims) and all(sizes.setdefault(d, n) == n and (not d.isdigit() or int(d) == n)
                                           for d, n in zip(dims, t.shape, strict=True))
        if not fits:
            raise ValueError(f"expected {spec}; got {', '.join(str(tuple(t.shape)) for t in tensors)}")
    return sizes


def bool_mask(name: str, mask: object, device: torch.device) -> Tensor:
    """``mask`` must be a bool tensor on ``device`` (True = keep / may attend)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a bool torch.Tensor (True = keep), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must have dtype torch.bool (True = keep), got {mask.dtype}")
    if mask.device != torch.device(device):
        raise ValueError(f"{name} is on {mask.device} but the data is on {device}; move it with .to({device})")
    return mask


def broadcasts_to(name: str, x: Tensor, shape: tuple[int, ...], target: str = "shape") -> Tensor:
    """``x`` must broadcast to ``shape`` without growing it (a mask over a score matrix, say)."""
    if _broadcast_shape(tuple(x.shape), tuple(shape)) != tuple(shape):
        raise ValueError(f"{name} of shape {tuple(x.shape)} does not broadcast to {target} {tuple(shape)}")
    return x


def broadcast(what: str, *shapes: tuple[int, ...]) -> torch.Size:
    """The ``shapes`` must broadcast together; returns their broadcast shape."""
    out = _broadcast_shape(*(tuple(s) for s in shapes))
    if out is None:
        raise ValueError(f"{what} do not broadcast: {', '.join(str(tuple(s)) for s in shapes)}")
    return torch.Size(out)


def like(name: str, x: Tensor, ref: Tensor, ref_name: str = "the weights") -> Tensor:
    """``x`` must have the dtype and the device of ``ref`` (usually a module's parameters)."""
    if x.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but {ref_name} are {ref.dtype}; convert one of them "
                        f"({name}.to({ref.dtype}) or module.to({x.dtype}))")
    if x.device != ref.device:
        raise ValueError(f"{name} is on {x.device} but {ref_name} are on {ref.device}")
    return x


def same_dtype_and_device(names: str, *tensors: Tensor) -> None:
    """The ``tensors`` (named together in ``names``, e.g. ``"q, k, v"``) must share one dtype and one device."""
    if len({t.dtype for t in tensors}) > 1:
        raise TypeError(f"{names} must share one dtype, got {', '.join(str(t.dtype) for t in tensors)}")
    if len({t.device for t in tensors}) > 1:
        raise ValueError(f"{names} must be on one device, got {', '.join(str(t.device) for t in tensors)}")
