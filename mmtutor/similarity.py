"""Chapter 4: cosine similarity and exact similarity search.

$$\\mathrm{sim}(\\vec a,\\vec b)=\\frac{\\vec a\\cdot\\vec b}{\\lVert\\vec a\\rVert_2\\lVert\\vec b\\rVert_2}$$

* ``cosine_similarity``: the seed's measure, with ``torch.nn.functional.cosine_similarity``'s semantics.
* ``normalize``: rows scaled to unit length, so that cosine becomes a plain dot product.
* ``topk_search``: exact top-k by cosine over a database, blocked so it keeps pace with faiss.

The approximate indexes (``IVFIndex``, ``LSHIndex``, ``PQIndex``, ``kmeans``) live in
``mmtutor.ann`` and are importable from here too.

Why the exact search is blocked. The obvious ``q @ X.T`` then ``topk`` writes a (Q, N) score matrix
(4 GB for 1,000 queries and 1,000,000 vectors) to memory and reads it back: memory traffic, not
arithmetic, sets its speed. ``topk_search`` instead computes one (N_b, Q_b) tile of scores at a time,
small enough to stay in the core's L2 cache, and keeps a running top-k per query. Most tiles change
nothing: a tile is first reduced to the maximum of each group of 16 scores (one cheap pass), and
only groups whose maximum beats a query's current k-th best score are looked at again.

On the CPU the tile products go through NumPy's BLAS (OpenBLAS), which on the machines this
workbook was written on multiplies matrices about 1.6x faster than torch's CPU matmul; the two
CPU threads each search half of the database with single-threaded BLAS, then the halves are
merged. On a GPU the same blocking runs in torch.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # defined in mmtutor.ann, resolved lazily by __getattr__ below
    from .ann import IVFIndex, LSHIndex, PQIndex, kmeans

__all__ = ["cosine_similarity", "normalize", "topk_search", "recall_at_k", "clustered_vectors",
           "IVFIndex", "LSHIndex", "PQIndex", "kmeans"]

_BLOCK_N = 1024  # database rows per tile: a (1024, 256) float32 tile is 1 MB, it stays in L2
_BLOCK_Q = 256  # queries per tile
_GROUP = 16  # scores per group in the cheap "can this tile change anything" pass
_MERGE_EVERY = 8192  # candidates collected before they are merged into the running top-k
_ROWS_PER_THREAD = 65536  # below this many database rows per thread, one thread is faster


# ----------------------------------------------------------------------------- the measure
def cosine_similarity(a: Tensor, b: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """Cosine similarity of ``a`` and ``b`` along ``dim``, with broadcasting.

    $$\\mathrm{sim}(\\vec a,\\vec b)=\\frac{\\vec a\\cdot\\vec b}{\\max(\\lVert\\vec a\\rVert_2,\\epsilon)\\,
    \\max(\\lVert\\vec b\\rVert_2,\\epsilon)}$$

    Same semantics as ``torch.nn.functional.cosine_similarity`` (default ``dim=-1`` here): a zero
    vector gives 0, never NaN; 1-D inputs work. ``a`` and ``b`` must have the same size along
    ``dim`` (no broadcasting along it) and be broadcastable elsewhere.
    """
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
    a_shape = (1,) * (n - a.ndim) + tuple(a.shape)
    b_shape = (1,) * (n - b.ndim) + tuple(b.shape)
    if a_shape[dim] != b_shape[dim]:
        raise ValueError(f"cosine_similarity: a has size {a_shape[dim]} along dim {dim} but b has size "
                         f"{b_shape[dim]} (shapes {tuple(a.shape)} and {tuple(b.shape)})")
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(f"cosine_similarity: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                         "do not broadcast") from err
    dtype = torch.promote_types(a.dtype, b.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    a, b = a.to(dtype).reshape(a_shape), b.to(dtype).reshape(b_shape)  # same rank, so dim means the same axis
    # divide each vector by its (clamped) norm first, then a dot product: no overflow in |a| |b|
    a_hat = a / torch.linalg.vector_norm(a, dim=dim, keepdim=True).clamp_min(eps)
    b_hat = b / torch.linalg.vector_norm(b, dim=dim, keepdim=True).clamp_min(eps)
    return (a_hat * b_hat).sum(dim)


def normalize(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Rows of ``x (N, D)`` divided by $\\max(\\lVert x_i\\rVert_2, \\epsilon)$ (zero rows stay zero)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"normalize: expected a floating-point torch.Tensor, got "
                        f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}")
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(eps)


# ----------------------------------------------------------------------------- exact search
def _check_matrix(x: Any, name: str, fn: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{fn}: {name} must have shape (rows, D), got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{fn}: {name} is empty (shape {tuple(x.shape)}); expected at least one row and column")


def _check_k(k: Any, n: int, fn: str, what: str = "database rows") -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"{fn}: k must be an int, got {type(k).__name__}")
    if not 1 <= k <= n:
        raise ValueError(f"{fn}: k must lie in [1, {n}] (the number of {what}), got k={k}")


def _segmented_topk(rows: np.ndarray, idx: np.ndarray, vals: np.ndarray, n_rows: int,
                    k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best (value, index) pairs: value descending, then index ascending.

    Rows with fewer than k candidates are padded with (-inf, -1).
    """
    order = np.lexsort((idx, -vals, rows))  # sort by row, then score descending, then index
    r = rows[order]
    starts = np.searchsorted(r, np.arange(n_rows))
    rank = np.arange(len(r)) - starts[r]  # position of each candidate inside its row
    keep = rank < k
    top_v = np.full((n_rows, k), -np.inf, vals.dtype)
    top_i = np.full((n_rows, k), -1, np.int64)
    top_v[r[keep], rank[keep]] = vals[order[keep]]
    top_i[r[keep], rank[keep]] = idx[order[keep]]
    return top_v, top_i


class _RunningTopK:
    """The k best (score, index) seen so far per query; candidates are merged in batches."""

    def __init__(self, n_queries: int, k: int, dtype: np.dtype) -> None:
        self.k = k
        self.values = np.full((n_queries, k), -np.inf, dtype)  # (Q, k), descending
        self.indices = np.full((n_queries, k), -1, np.int64)
        self.tau = self.values[:, k - 1]  # a view: the k-th best score, the bar a candidate must beat
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_pending = 0

    def push(self, rows: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> None:
        self.pending.append((rows, idx, vals))
        self.n_pending += len(rows)
        if self.n_pending >= _MERGE_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        rows, idx, vals = (np.concatenate(parts) for parts in zip(*self.pending, strict=True))
        self.pending, self.n_pending = [], 0
        touched, local = np.unique(rows, return_inverse=True)
        k, n = self.k, len(touched)
        top_v, top_i = _segmented_topk(
            np.concatenate([np.repeat(np.arange(n), k), local]),
            np.concatenate([self.indices[touched].ravel(), idx]),
            np.concatenate([self.values[touched].ravel(), vals]), n, k)
        self.values[touched], self.indices[touched] = top_v, top_i


TileFn = Callable[[int, int, np.ndarray], None]  # fill(q0, q1, out (n_b, q1 - q0)) with scores


def _search_tiles(k: int, dtype: np.dtype, rows: tuple[int, int], queries: tuple[int, int],
                  prepare: Callable[[int, int], TileFn]) -> _RunningTopK:
    """Exact top-k of queries ``[q_lo, q_hi)`` over database rows ``[lo, hi)``, one tile at a time.

    ``prepare(s, e)`` readies database rows ``[s, e)`` and returns ``fill(q0, q1, out)``, which
    writes the scores of queries ``[q0, q1)`` against them into ``out (e - s, q1 - q0)``.
    """
    (lo, hi), (q_lo, q_hi) = rows, queries
    best = _RunningTopK(q_hi - q_lo, k, dtype)
    n_groups = _BLOCK_N // _GROUP
    tile = np.empty(_BLOCK_N * _BLOCK_Q, dtype)  # reused buffers: no allocation per tile
    group_max = np.empty(n_groups * _BLOCK_Q, dtype)
    hit = np.empty(n_groups * _BLOCK_Q, bool)
    members = n_groups * np.arange(_GROUP)  # row offsets of a group's members inside a tile
    for s in range(lo, hi, _BLOCK_N):
        e = min(s + _BLOCK_N, hi)
        n_b, fill = e - s, prepare(s, e)
        exact = s == lo or n_b < _BLOCK_N  # the first tile (no bar yet) and a ragged last tile
        for q0 in range(q_lo, q_hi, _BLOCK_Q):
            n_t = min(_BLOCK_Q, q_hi - q0)
            scores = tile[: n_b * n_t].reshape(n_b, n_t)  # (n_b, Q_b): scores[j, r] = sim(x_{s+j}, q_{q0+r})
            fill(q0, q0 + n_t, scores)
            tau = best.tau[q0 - q_lo:q0 - q_lo + n_t]  # (Q_b,)
            if exact:
                kk = min(k, n_b)
                kth = (scores.max(axis=0) if kk == 1  # (Q_b,) the k-th best score in the tile
                       else np.partition(scores, n_b - kk, axis=0)[n_b - kk])
                j, r = np.nonzero((scores >= kth) & (scores > tau))
            else:
                m = group_max[: n_groups * n_t].reshape(n_groups, n_t)
                # group g of query r = tile rows g, g + 64, g + 128, ...: a max over 16 contiguous slabs
                np.max(scores.reshape(_GROUP, n_groups * n_t), axis=0, out=m.reshape(-1))
                h = hit[: n_groups * n_t].reshape(n_groups, n_t)
                np.greater(m, tau, out=h)  # strict: on a tie the earlier (smaller) index already wins
                if not h.any():
                    continue
                g, r = np.nonzero(h)
                j = (g[:, None] + members).ravel()  # every member of each hit group
                r = np.repeat(r, _GROUP)
                keep = scores[j, r] > tau[r]  # only the members that beat the bar
                j, r = j[keep], r[keep]
            best.push(r + q0 - q_lo, j + s, scores[j, r])
    best.flush()
    return best


def _parallel(fn: Callable[[int], Any], n_tasks: int) -> list[Any]:
    """``[fn(0), ..., fn(n_tasks - 1)]`` on torch's CPU threads, each calling single-threaded BLAS.

    Small matrix products gain nothing from BLAS threads (and on a busy machine their spinning
    threads cost a lot); one Python thread per core, each with its own slice of work, scales better.
    """
    n_threads = min(torch.get_num_threads(), n_tasks)
    with _blas_threads(1):
        if n_threads <= 1:
            return [fn(t) for t in range(n_tasks)]
        with ThreadPoolExecutor(n_threads) as pool:
            return list(pool.map(fn, range(n_tasks)))


def _threaded_topk(n_q: int, n: int, k: int, dtype: np.dtype,
                   prepare: Callable[[int, int], TileFn]) -> tuple[np.ndarray, np.ndarray]:
    """``_search_tiles`` for all queries over all ``n`` rows, split over the CPU threads."""
    n_threads = torch.get_num_threads()
    if n >= 2 * _ROWS_PER_THREAD and n_threads > 1:
        # each thread: a contiguous slice of the database rounded to whole tiles, so indices stay ordered
        cuts = [min(n, round(n * t / n_threads / _BLOCK_N) * _BLOCK_N) for t in range(n_threads)] + [n]
        parts = _parallel(lambda t: _search_tiles(k, dtype, (cuts[t], cuts[t + 1]), (0, n_q), prepare), n_threads)
        return _segmented_topk(np.repeat(np.arange(n_q), k * n_threads),
                               np.concatenate([p.indices for p in parts], axis=1).ravel(),
                               np.concatenate([p.values for p in parts], axis=1).ravel(), n_q, k)
    # a small database: each thread takes whole blocks of queries instead
    n_parts = max(1, min(n_threads, n_q // _BLOCK_Q))
    cuts = [min(n_q, round(n_q * t / n_parts / _BLOCK_Q) * _BLOCK_Q) for t in range(n_parts)] + [n_q]
    parts = _parallel(lambda t: _search_tiles(k, dtype, (0, n), (cuts[t], cuts[t + 1]), prepare), n_parts)
    return np.concatenate([p.values for p in parts]), np.concatenate([p.indices for p in parts])


def _unit_rows(x: np.ndarray, eps: float, what: str, start: int = 0) -> np.ndarray:
    """Rows of ``x`` over their norms; a row that is inf or NaN is a ValueError naming it."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    if not np.isfinite(norms).all():
        bad = start + int(np.flatnonzero(~np.isfinite(norms))[0])
        raise ValueError(f"{what} row {bad} is not finite (inf or NaN, or too large to square)")
    return x / np.maximum(norms, eps)[:, None]


def _as_numpy(x: Tensor, dtype: type = np.float32) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy().astype(dtype, copy=False))


def _topk_numpy(q: Tensor, x: Tensor, k: int, eps: float) -> tuple[Tensor, Tensor]:
    dtype = np.float64 if torch.float64 in (q.dtype, x.dtype) else np.float32
    qn = _unit_rows(_as_numpy(q, dtype), eps, "topk_search: query")
    xs = _as_numpy(x, dtype)

    def prepare(s: int, e: int) -> TileFn:
        xb = _unit_rows(xs[s:e], eps, "topk_search: database", s)  # (n_b, D), normalised once per block
        return lambda q0, q1, out: np.matmul(xb, qn[q0:q1].T, out=out)

    values, indices = _threaded_topk(qn.shape[0], xs.shape[0], k, qn.dtype, prepare)
    return torch.from_numpy(values), torch.from_numpy(indices)


_controller = None


def _blas_threads(n: int) -> Any:
    """A context manager limiting NumPy's BLAS to ``n`` threads (threadpoolctl comes with scikit-learn)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")


def _topk_torch(q: Tensor, x: Tensor, k: int, eps: float, block: int = 65536) -> tuple[Tensor, Tensor]:
    """The same search in torch (GPU path): per block, a stable sort keeps ties in index order."""
    qn = normalize(q.detach(), eps)
    n = x.shape[0]
    block = max(k, min(block, max(1, 2**26 // q.shape[0])))  # keep a block's scores near 256 MB or less
    best_v = best_i = None
    for s in range(0, n, block):
        scores = qn @ normalize(x[s:s + block].detach(), eps).T  # (Q, n_b)
        ids = torch.arange(s, s + scores.shape[1], device=x.device).expand_as(scores)
        if best_v is not None:  # the running best comes first: on equal scores, smaller indices stay ahead
            scores, ids = torch.cat([best_v, scores], 1), torch.cat([best_i, ids], 1)
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        best_v, best_i = scores.gather(1, order), ids.gather(1, order)
    return best_v, best_i


@torch.no_grad()
def topk_search(queries: Tensor, database: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Exact cosine top-k: for every query, the ``k`` database rows most similar to it.

    $$\\mathrm{top}_k(\\vec q) = \\operatorname*{arg\\,top\\text{-}k}_{i}\\ \\mathrm{sim}(\\vec q, \\vec x_i)$$

    ``queries (Q, D)``, ``database (N, D)``: float tensors on the same device. Returns
    ``scores (Q, k)`` (descending) and ``indices (Q, k)`` (int64); equal scores are ordered by the
    smaller index, so the answer equals a stable sort of the full (Q, N) score matrix. Scores are
    float64 if either input is float64, float32 otherwise. Not differentiable.
    """
    _check_matrix(queries, "queries", "topk_search")
    _check_matrix(database, "database", "topk_search")
    if queries.shape[1] != database.shape[1]:
        raise ValueError(f"topk_search: queries have D={queries.shape[1]} but the database has "
                         f"D={database.shape[1]} (shapes {tuple(queries.shape)} and {tuple(database.shape)})")
    if queries.device != database.device:
        raise ValueError(f"topk_search: queries are on {queries.device} but the database is on {database.device}")
    _check_k(k, database.shape[0], "topk_search")
    k, eps = int(k), 1e-8
    if database.device.type == "cpu":
        return _topk_numpy(queries, database, k, eps)
    if not (torch.isfinite(queries).all() and torch.isfinite(database).all()):
        raise ValueError("topk_search: the queries or the database contain inf or NaN")
    dtype = torch.float64 if torch.float64 in (queries.dtype, database.dtype) else torch.float32
    return _topk_torch(queries.to(dtype), database.to(dtype), k, eps)


def recall_at_k(found: Tensor, truth: Tensor) -> float:
    """Mean over queries of $|\\text{found} \\cap \\text{truth}| / k$ for index tensors ``(Q, k)``."""
    if found.ndim != 2 or truth.ndim != 2 or found.shape[0] != truth.shape[0]:
        raise ValueError(f"recall_at_k: expected two (Q, k) index tensors, got {tuple(found.shape)} "
                         f"and {tuple(truth.shape)}")
    hits = (found[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)  # (Q, k_found, k)
    return float(hits.any(1).sum(1).double().mean() / truth.shape[1])


def clustered_vectors(n: int, dim: int, n_clusters: int = 100, spread: float = 0.5, seed: int = 0) -> Tensor:
    """``n`` seeded points around ``n_clusters`` random centres: $x = c_z + \\sigma\\varepsilon$.

    $c_z, \\varepsilon \\sim \\mathcal N(0, I_{dim})$, $z$ uniform, $\\sigma$ = ``spread``: the stand-in
    for real embeddings (which come in clumps) used to measure the approximate indexes.
    """
    for name, value in (("n", n), ("dim", dim), ("n_clusters", n_clusters)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"clustered_vectors: {name} must be a positive int, got {value!r}")
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clusters, dim, generator=g)
    z = torch.randint(0, n_clusters, (n,), generator=g)
    return centres[z] + spread * torch.randn(n, dim, generator=g)


def __getattr__(name: str) -> Any:
    # the approximate indexes live in mmtutor.ann (which imports this module), resolved on first use
    if name in ("IVFIndex", "LSHIndex", "PQIndex", "kmeans"):
        from . import ann

        return getattr(ann, name)
    raise AttributeError(f"module 'mmtutor.similarity' has no attribute {name!r}")

