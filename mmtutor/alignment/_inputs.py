"""Input checks shared by the losses and the metrics of :mod:`mmtutor.alignment` (private)."""

from __future__ import annotations

import math

import torch

from .._checks import bool_mask, float_tensor, int_tensor


def embeddings(name: str, x: object) -> torch.Tensor:
    """A float ``(N, d)`` tensor with ``N, d >= 1``."""
    if not float_tensor(name, x, "(N, d)").numel():
        raise ValueError(f"{name} must have shape (N, d) with N, d >= 1, got {tuple(x.shape)}")
    return x


def pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    """Two embedding matrices of the same dimension ``d``."""
    embeddings(names[0], a)
    embeddings(names[1], b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same dimension d, got {a.shape[1]} and {b.shape[1]}")


def scale(logit_scale: object) -> torch.Tensor | float:
    """A positive finite multiplier: a number or a one-element tensor (returned 0-d)."""
    if isinstance(logit_scale, torch.Tensor):
        if logit_scale.numel() != 1:
            raise ValueError(f"logit_scale must be a scalar, got shape {tuple(logit_scale.shape)}")
        value = float(logit_scale.detach())
    elif isinstance(logit_scale, int | float) and not isinstance(logit_scale, bool):
        value = float(logit_scale)
    else:
        raise TypeError(f"logit_scale must be a number or a scalar tensor, got {type(logit_scale).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"logit_scale is the multiplier 1/temperature and must be > 0 and finite, got {value}")
    return logit_scale.reshape(()) if isinstance(logit_scale, torch.Tensor) else logit_scale


def positives(mask: object, rows: int, columns: int, device: torch.device, *, every_column: int | None = None
              ) -> torch.Tensor:
    """A bool ``(rows, columns)`` mask of the true pairs with a True in every row (and in each of the first
    ``every_column`` columns, default all)."""
    bool_mask("positives", mask, device)
    if tuple(mask.shape) != (rows, columns):
        raise ValueError(f"positives must have shape ({rows}, {columns}), got {tuple(mask.shape)}")
    if not bool(mask.any(dim=1).all()):
        raise ValueError("positives needs a True in every row: each query needs at least one right answer")
    if not bool(mask[:, :every_column].any(dim=0).all()):
        raise ValueError("positives needs a True in every column: each text is true of at least one image")
    return mask


def targets(t: torch.Tensor | None, q: int, g: int, device: torch.device) -> torch.Tensor:
    """Target indices ``(Q,)`` in ``[0, G)``; ``None`` means ``arange(Q)`` (then ``Q <= G``)."""
    if t is None:
        if q > g:
            raise ValueError(f"without targets query i matches gallery item i, so need Q <= G, got Q={q}, G={g}")
        return torch.arange(q, device=device)
    return int_tensor("targets", t, "(Q,)", Q=q, low=0, high=g - 1).to(device)
