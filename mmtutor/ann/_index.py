r"""What the indexes of :mod:`mmtutor.ann` share: ``dim``, ``ntotal``, the 'call train/add first' errors,
and the check that turns input vectors into unit rows."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._search import EPS, as_numpy, int_in, matrix, unit_rows


class Index:
    """Shared bookkeeping of an index over ``dim``-dimensional vectors; ``ntotal`` of them added so far."""

    needs_training = True

    def __init__(self, dim: int) -> None:
        self.dim = int_in(f"{type(self).__name__}: dim", dim)
        self.is_trained = not self.needs_training
        self.ntotal = 0

    def _ready(self, what: str) -> None:
        """Raise ``RuntimeError`` saying what to call first if ``.what`` cannot run yet."""
        name = type(self).__name__
        if not self.is_trained:
            raise RuntimeError(f"{name}.{what}: the index is not trained; call .train(x) first")
        if what == "search" and self.ntotal == 0:
            raise RuntimeError(f"{name}.search: the index is empty; call .add(x) first")

    def _unit(self, x: Tensor, fn: str) -> np.ndarray:
        r"""``x (N, dim)`` as float32 NumPy rows $x_i / \max(\lVert x_i\rVert_2, \epsilon)$; ``fn`` names the caller."""
        matrix(f"{fn}: {'queries' if 'search' in fn else 'x'}", x)
        if x.shape[1] != self.dim:
            raise ValueError(f"{fn}: expected vectors of dimension {self.dim} (the index's dim), got shape "
                             f"{tuple(x.shape)}")
        return unit_rows(as_numpy(x), EPS, fn + ":")

    @staticmethod
    def _as_torch(values: np.ndarray, indices: np.ndarray) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(np.ascontiguousarray(values)), torch.from_numpy(np.ascontiguousarray(indices))
