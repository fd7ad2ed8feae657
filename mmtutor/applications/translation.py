r"""Word translation by aligning two embedding spaces (Mikolov, Le and Sutskever 2013; Xing et al. 2015).

Word vectors of two languages, trained apart, are two clouds of points with a similar shape: "dog" sits near
"cat" in both. Learn a map $W$ from a seed dictionary of pairs $(\vec x_i, \vec z_i)$, then translate a new
word by chapter 6's nearest-neighbour search of $\vec x W$ among the target language's vectors.

* :func:`least_squares_map`: $W = \arg\min_W \lVert XW - Z\rVert_F^2$, Mikolov's translation matrix (gensim's
  ``TranslationMatrix``); with fewer pairs than dimensions the minimum-norm solution;
* :func:`procrustes`: the same with $W$ orthogonal, solved by one SVD (Schönemann 1966), which keeps every
  length and angle, so cosine neighbourhoods survive the map (Xing et al. 2015; Smith et al. 2017);
* :func:`translate`: the ``k`` nearest target words of each mapped source vector (``topk_search``);
* :func:`precision_at`: the share of test words whose translation is among the ``k`` found;
* :func:`leave_one_out`: fit on all pairs but one, translate that one, for every pair in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import float_tensor, positive_int
from ..similarity import topk_search


def _check_pairs(X: Tensor, Z: Tensor) -> tuple[Tensor, Tensor]:
    X, Z = float_tensor("X", X, "(n, d)"), float_tensor("Z", Z, "(n, d')")
    if X.shape[0] != Z.shape[0] or X.shape[0] == 0:
        raise ValueError(f"X and Z must hold the same number n >= 1 of paired rows, got {X.shape[0]} and {Z.shape[0]}")
    return X, Z


def least_squares_map(X: Tensor, Z: Tensor) -> Tensor:
    r"""$W = \arg\min_W \sum_i \lVert \vec x_i W - \vec z_i \rVert^2 = X^{+} Z$, shape ``(d, d')``.

    ``X (n, d)`` source vectors, ``Z (n, d')`` their translations. $X^+$ is the pseudo-inverse; when
    $n < d$ (fewer pairs than dimensions) many $W$ fit exactly and this is the one of least norm, as
    ``numpy.linalg.lstsq`` (and so gensim) returns.
    """
    X, Z = _check_pairs(X, Z)
    return torch.linalg.pinv(X.double()) @ Z.double()  # (d, n) @ (n, d')


def procrustes(X: Tensor, Z: Tensor) -> Tensor:
    r"""The orthogonal $W$ closest to mapping ``X`` onto ``Z``: $\arg\min_{W^\top W = I}\lVert XW - Z\rVert_F$.

    $$X^\top Z = U \Sigma V^\top \quad\Longrightarrow\quad W = U V^\top$$

    (expand $\lVert XW - Z\rVert^2 = \lVert X\rVert^2 + \lVert Z\rVert^2 - 2\,\mathrm{tr}(W^\top X^\top Z)$; the trace
    is largest when $W$ turns $U$ into $V$). ``X, Z (n, d)``: both spaces need the same dimension ``d``.
    """
    X, Z = _check_pairs(X, Z)
    if X.shape[1] != Z.shape[1]:
        raise ValueError(f"an orthogonal map needs spaces of one dimension, got {X.shape[1]} and {Z.shape[1]}")
    U, _, Vh = torch.linalg.svd(X.double().T @ Z.double())  # (d, d), (d,), (d, d)
    return U @ Vh


def translate(X: Tensor, W: Tensor, target: Tensor, k: int = 5) -> Tensor:
    r"""Indices ``(n, k)`` of the ``k`` rows of ``target (V, d')`` nearest (cosine) to each $\vec x W$.

    Chapter 6's exact ``topk_search``: scores descending, ties to the smaller index.
    """
    X, W = float_tensor("X", X, "(n, d)"), float_tensor("W", W, "(d, d')")
    target = float_tensor("target", target, "(V, d')")
    if X.shape[1] != W.shape[0] or W.shape[1] != target.shape[1]:
        raise ValueError(f"X (n, {X.shape[1]}) @ W {tuple(W.shape)} must land in the target's {target.shape[1]} dims")
    _, indices = topk_search((X.double() @ W.double()).float(), target.float(), positive_int("k", k))
    return indices


def precision_at(found: Tensor, truth: Tensor, k: int) -> Tensor:
    """1 where ``truth[i]`` is among the first ``k`` of ``found[i]`` (``(n, K)`` indices), else 0: ``(n,)``."""
    k = positive_int("k", k)
    if found.ndim != 2 or truth.shape != (found.shape[0],) or k > found.shape[1]:
        raise ValueError(f"found must be (n, K >= k={k}) and truth (n,), got {tuple(found.shape)}, "
                         f"{tuple(truth.shape)}")
    return (found[:, :k] == truth.to(found.device)[:, None]).any(1).double()


def leave_one_out(X: Tensor, Z: Tensor, fit: Callable[[Tensor, Tensor], Tensor], target: Tensor,
                  truth: Sequence[int], k: int = 5, normalise: bool = True) -> Tensor:
    r"""Translate each pair's source word with a map fitted on the other pairs: ``(n, k)`` target indices.

    ``X (n, d)``, ``Z (n, d')`` the dictionary's vectors, ``target (V, d')`` every target word, ``truth[i]`` the
    row of ``target`` that translates pair ``i`` (``Z[i]`` is that row). With ``normalise`` (as gensim) every
    vector is scaled to unit length first.
    """
    X, Z = _check_pairs(X, Z)
    if len(truth) != X.shape[0]:
        raise ValueError(f"need one truth index per pair, got {len(truth)} for {X.shape[0]} pairs")
    if normalise:
        X, Z, target = F.normalize(X, dim=1), F.normalize(Z, dim=1), F.normalize(target, dim=1)
    rows = []
    for i in range(X.shape[0]):
        rest = torch.arange(X.shape[0]) != i
        rows.append(translate(X[i:i + 1], fit(X[rest], Z[rest]), target, k)[0])
    return torch.stack(rows)
