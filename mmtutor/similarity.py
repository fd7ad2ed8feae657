r"""Chapter 6: cosine similarity and exact similarity search.

$$\mathrm{sim}(\vec a,\vec b)=\frac{\vec a\cdot\vec b}{\lVert\vec a\rVert_2\lVert\vec b\rVert_2}$$

* ``cosine_similarity``: the original write-up's measure, with ``torch.nn.functional.cosine_similarity``'s semantics.
* ``normalize``: rows scaled to unit length, so that cosine becomes a plain dot product.
* ``topk_search``: exact top-k by cosine over a database, blocked so it keeps pace with faiss.
* ``neighbour_recall``: how many of the true k nearest neighbours an approximate search found.
* ``clustered_vectors``: seeded clumps of points, the stand-in for real embeddings.

The approximate indexes (``IVFIndex``, ``LSHIndex``, ``PQIndex``, ``kmeans``) live in ``mmtutor.ann`` and are
importable from here too. The engine that makes ``topk_search`` fast (tiles of scores that stay in the cache,
a running top-k per query, one BLAS thread per CPU thread) is the private module ``mmtutor._search``; its
reference is a stable sort of the full score matrix, $S = \hat Q \hat X^\top$.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _search
from ._checks import float_tensor, number, positive_int

# the approximate indexes, importable from here as the chapter's contract says (mmtutor.ann imports nothing from here)
from .ann import IVFIndex as IVFIndex
from .ann import LSHIndex as LSHIndex
from .ann import PQIndex as PQIndex
from .ann import kmeans as kmeans

__all__ = ["cosine_similarity", "normalize", "topk_search", "neighbour_recall", "clustered_vectors"]


# ----------------------------------------------------------------------------- the measure
def _cosine_inputs(a: object, b: object, dim: int, eps: float) -> tuple[Tensor, Tensor]:
    """The checks of ``cosine_similarity``; returns ``a`` and ``b`` in one floating dtype and of one rank."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, Tensor):
            raise TypeError(f"cosine_similarity: {name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 0:
            raise ValueError(f"cosine_similarity: {name} must have at least 1 dimension, got a scalar")
        if x.is_complex():
            raise TypeError(f"cosine_similarity: {name} must be real, got dtype {x.dtype}")
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps >= 0:
        raise ValueError(f"cosine_similarity: eps must be a number >= 0, got {eps!r}")
    if a.device != b.device:
        raise ValueError(f"cosine_similarity: a is on {a.device} but b is on {b.device}")
    n = max(a.ndim, b.ndim)
    if not -n <= dim < n:
        raise ValueError(f"cosine_similarity: dim must lie in [{-n}, {n - 1}] for inputs of {n} dims, got {dim}")
    a_shape, b_shape = (1,) * (n - a.ndim) + tuple(a.shape), (1,) * (n - b.ndim) + tuple(b.shape)
    if a_shape[dim] != b_shape[dim]:
        raise ValueError(f"cosine_similarity: a has size {a_shape[dim]} along dim {dim} but b has size "
                         f"{b_shape[dim]} (shapes {tuple(a.shape)} and {tuple(b.shape)})")
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(f"cosine_similarity: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                         "do not broadcast") from err
    dtype = torch.promote_types(a.dtype, b.dtype)
    dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
    return a.to(dtype).reshape(a_shape), b.to(dtype).reshape(b_shape)  # same rank: dim means the same axis


def cosine_similarity(a: Tensor, b: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    r"""Cosine similarity of ``a`` and ``b`` along ``dim``, with broadcasting.

    $$\mathrm{sim}(\vec a,\vec b)=\frac{\vec a\cdot\vec b}{\max(\lVert\vec a\rVert_2,\epsilon)\,
    \max(\lVert\vec b\rVert_2,\epsilon)}$$

    ``a``, ``b``: real tensors of at least one dimension with the same size along ``dim`` (no broadcasting
    along it), broadcastable elsewhere; integers are promoted to the default float dtype. Returns their
    broadcast shape without ``dim``. Same semantics as ``torch.nn.functional.cosine_similarity`` (default
    ``dim=-1`` here): a zero vector gives 0, never NaN; 1-D inputs work.

    Raises ``TypeError`` for a non-tensor or complex input, ``ValueError`` for a scalar, a bad ``dim`` or
    ``eps``, mismatched sizes along ``dim`` (naming both), shapes that do not broadcast, or two devices.
    """
    a, b = _cosine_inputs(a, b, dim, eps)
    # divide each vector by its (clamped) norm first, then a dot product: no overflow in |a| |b|
    a_hat = a / torch.linalg.vector_norm(a, dim=dim, keepdim=True).clamp_min(eps)
    b_hat = b / torch.linalg.vector_norm(b, dim=dim, keepdim=True).clamp_min(eps)
    return (a_hat * b_hat).sum(dim)


def normalize(x: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Rows scaled to unit length: $\hat x_i = x_i / \max(\lVert x_i\rVert_2, \epsilon)$ (zero rows stay zero).

    ``x (..., D)`` floating point, normalised along its last axis; returns the same shape. Raises ``TypeError``
    for anything else.
    """
    float_tensor("normalize: x", x)
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(eps)


# ----------------------------------------------------------------------------- exact search
@torch.no_grad()
def topk_search(queries: Tensor, database: Tensor, k: int) -> tuple[Tensor, Tensor]:
    r"""Exact cosine top-k: for every query, the ``k`` database rows most similar to it.

    $$\mathrm{top}_k(\vec q) = \operatorname*{arg\,top\text{-}k}_{i}\ \mathrm{sim}(\vec q, \vec x_i)$$

    ``queries (Q, D)``, ``database (N, D)``: float tensors on the same device. Returns ``scores (Q, k)``
    (descending) and ``indices (Q, k)`` (int64); equal scores are ordered by the smaller index, so the answer
    equals a stable sort of the full (Q, N) score matrix. Scores are float64 if either input is float64,
    float32 otherwise. Not differentiable. On the CPU the search runs in tiles on every thread
    (``mmtutor._search``), on a GPU in blocks in torch.

    Raises ``TypeError`` for a non-float input or a non-int ``k``; ``ValueError`` for empty inputs,
    mismatched ``D``, two devices, ``k`` outside ``[1, N]``, or a row that is inf or NaN (naming it).
    """
    k = _check_search(queries, database, k)
    if database.device.type == "cpu":
        return _search.topk_numpy(queries, database, k)
    if not (torch.isfinite(queries).all() and torch.isfinite(database).all()):
        raise ValueError("topk_search: the queries or the database contain inf or NaN")
    dtype = torch.float64 if torch.float64 in (queries.dtype, database.dtype) else torch.float32
    return _search.topk_torch(queries.to(dtype), database.to(dtype), k)


def _check_search(queries: object, database: object, k: object) -> int:
    """The checks of ``topk_search``; returns ``k`` as an int."""
    _search.matrix("topk_search: queries", queries)
    _search.matrix("topk_search: database", database)
    if queries.shape[1] != database.shape[1]:
        raise ValueError(f"topk_search: queries have D={queries.shape[1]} but the database has "
                         f"D={database.shape[1]} (shapes {tuple(queries.shape)} and {tuple(database.shape)})")
    if queries.device != database.device:
        raise ValueError(f"topk_search: queries are on {queries.device} but the database is on {database.device}")
    return _search.check_k(k, database.shape[0], "topk_search")


def neighbour_recall(found: Tensor, truth: Tensor) -> float:
    r"""Neighbour recall: the fraction of the true k nearest neighbours that a search found.

    $$\mathrm{recall@}k = \frac{1}{Q}\sum_{q=1}^{Q}\frac{\lvert \mathrm{found}(q) \cap \mathrm{truth}(q)\rvert}{k}$$

    ``found (Q, k_found)`` and ``truth (Q, k)``: index tensors (the order inside a row does not matter; -1 in
    ``truth`` is never matched). Not to be confused with retrieval R@k, ``mmtutor.alignment.recall_at_k``.
    Raises ``ValueError`` unless both are 2-D with the same number of rows.
    """
    if found.ndim != 2 or truth.ndim != 2 or found.shape[0] != truth.shape[0]:
        raise ValueError(f"neighbour_recall: expected two (Q, k) index tensors, got {tuple(found.shape)} "
                         f"and {tuple(truth.shape)}")
    hits = (found[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)  # (Q, k_found, k)
    return float(hits.any(1).sum(1).double().mean() / truth.shape[1])


def clustered_vectors(n: int, dim: int, n_clusters: int = 100, spread: float = 0.5, seed: int = 0) -> Tensor:
    r"""``n`` seeded points around ``n_clusters`` random centres: $x = c_z + \sigma\varepsilon$.

    $c_z, \varepsilon \sim \mathcal N(0, I_{dim})$, $z$ uniform over the centres, $\sigma$ = ``spread``: the
    stand-in for real embeddings (which come in clumps) used to measure the approximate indexes. Returns
    ``(n, dim)`` float32. Raises ``ValueError`` unless ``n``, ``dim``, ``n_clusters`` are positive ints and
    ``spread >= 0``.
    """
    n, dim, n_clusters = (positive_int(f"clustered_vectors: {name}", v)
                          for name, v in (("n", n), ("dim", dim), ("n_clusters", n_clusters)))
    number("clustered_vectors: spread", spread, 0)
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clusters, dim, generator=g)  # (C, dim)
    z = torch.randint(0, n_clusters, (n,), generator=g)  # (n,)
    return centres[z] + spread * torch.randn(n, dim, generator=g)
