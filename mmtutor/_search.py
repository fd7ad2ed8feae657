r"""The search engine: the fast machinery behind :func:`mmtutor.similarity.topk_search` and the indexes of
:mod:`mmtutor.ann`. Private: the chapter modules keep the maths and a readable reference search beside each
fast search; this module keeps what makes them fast.

Why tiles. The obvious ``q @ X.T`` then ``topk`` writes a (Q, N) score matrix (4 GB for 1,000 queries and
1,000,000 vectors) to memory and reads it back: memory traffic, not arithmetic, sets its speed.
:func:`search_tiles` computes one (N_b, Q_b) tile of scores at a time, small enough to stay in a core's L2
cache, and keeps a running top-k per query (:class:`RunningTopK`). Most tiles change nothing: a tile is first
reduced to the maximum of each group of 16 scores (one cheap pass), and only groups whose maximum beats a
query's current k-th best score are looked at again.

Why threads. On the CPU the tile products go through NumPy's BLAS (OpenBLAS), which on the machines this
workbook was written on multiplies matrices about 1.6x faster than torch's CPU matmul. Small products gain
nothing from BLAS threads, so :func:`parallel` runs one Python thread per core, each with single-threaded
BLAS (:func:`blas_threads`) and its own slice of the work; :func:`segmented_topk` merges the slices. On a
GPU, :func:`topk_torch` runs the same blocking in torch.

Ties: equal scores are ordered by the smaller index everywhere, so every result equals a stable sort.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._checks import float_tensor

BLOCK_N = 1024  # database rows per tile: a (1024, 256) float32 tile is 1 MB, it stays in L2
BLOCK_Q = 256  # queries per tile
GROUP = 16  # scores per group in the cheap "can this tile change anything" pass
MERGE_EVERY = 8192  # candidates collected before they are merged into the running top-k
ROWS_PER_THREAD = 65536  # below this many database rows per thread, one thread is faster
EPS = 1e-8  # norms are clamped to at least this: a zero vector stays zero


# ----------------------------------------------------------------------------- checks
def matrix(name: str, x: object) -> Tensor:
    """``x`` must be a floating-point tensor of shape (rows, D) with at least one row and one column."""
    float_tensor(name, x, "(rows, D)")
    if 0 in x.shape:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); expected at least one row and column")
    return x


def check_k(k: object, n: int, fn: str, what: str = "database rows") -> int:
    """``k`` must be an int in ``[1, n]``, ``n`` being the number of ``what``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"{fn}: k must be an int, got {type(k).__name__}")
    if not 1 <= k <= n:
        raise ValueError(f"{fn}: k must lie in [1, {n}] (the number of {what}), got k={k}")
    return int(k)


def int_in(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """``value`` must be an int (not a bool) in ``[low, high]`` (no upper bound when ``high`` is None)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must lie in [{low}, {high if high is not None else 'inf'}], got {value}")
    return int(value)


# ----------------------------------------------------------------------------- arrays
def as_numpy(x: Tensor, dtype: type = np.float32) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array of ``dtype`` on the CPU (no copy when it already is one)."""
    return np.ascontiguousarray(x.detach().cpu().numpy().astype(dtype, copy=False))


def unit_rows(x: np.ndarray, eps: float, what: str, start: int = 0) -> np.ndarray:
    r"""Rows of ``x (n, D)`` over $\max(\lVert x_i\rVert_2, \epsilon)$.

    A row that is inf or NaN raises ``ValueError`` naming it (``start`` + its position) and ``what``.
    """
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    if not np.isfinite(norms).all():
        bad = start + int(np.flatnonzero(~np.isfinite(norms))[0])
        raise ValueError(f"{what} row {bad} is not finite (inf or NaN, or too large to square)")
    return x / np.maximum(norms, eps)[:, None]


# ----------------------------------------------------------------------------- top-k bookkeeping
def segmented_topk(rows: np.ndarray, idx: np.ndarray, vals: np.ndarray, n_rows: int,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best (value, index) pairs: value descending, then index ascending.

    Candidate ``c`` belongs to row ``rows[c]``; returns ``(values, indices)``, each ``(n_rows, k)``.
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


class RunningTopK:
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
        if self.n_pending >= MERGE_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        rows, idx, vals = (np.concatenate(parts) for parts in zip(*self.pending, strict=True))
        self.pending, self.n_pending = [], 0
        touched, local = np.unique(rows, return_inverse=True)
        k, n = self.k, len(touched)
        top_v, top_i = segmented_topk(
            np.concatenate([np.repeat(np.arange(n), k), local]),
            np.concatenate([self.indices[touched].ravel(), idx]),
            np.concatenate([self.values[touched].ravel(), vals]), n, k)
        self.values[touched], self.indices[touched] = top_v, top_i


# ----------------------------------------------------------------------------- tiles and threads
TileFn = Callable[[int, int, np.ndarray], None]  # fill(q0, q1, out (n_b, q1 - q0)) with scores


def search_tiles(k: int, dtype: np.dtype, rows: tuple[int, int], queries: tuple[int, int],
                 prepare: Callable[[int, int], TileFn]) -> RunningTopK:
    """Exact top-k of queries ``[q_lo, q_hi)`` over database rows ``[lo, hi)``, one tile at a time.

    ``prepare(s, e)`` readies database rows ``[s, e)`` and returns ``fill(q0, q1, out)``, which
    writes the scores of queries ``[q0, q1)`` against them into ``out (e - s, q1 - q0)``.
    """
    (lo, hi), (q_lo, q_hi) = rows, queries
    best = RunningTopK(q_hi - q_lo, k, dtype)
    n_groups = BLOCK_N // GROUP
    tile = np.empty(BLOCK_N * BLOCK_Q, dtype)  # reused buffers: no allocation per tile
    group_max = np.empty(n_groups * BLOCK_Q, dtype)
    hit = np.empty(n_groups * BLOCK_Q, bool)
    members = n_groups * np.arange(GROUP)  # row offsets of a group's members inside a tile
    for s in range(lo, hi, BLOCK_N):
        e = min(s + BLOCK_N, hi)
        n_b, fill = e - s, prepare(s, e)
        exact = s == lo or n_b < BLOCK_N  # the first tile (no bar yet) and a ragged last tile
        for q0 in range(q_lo, q_hi, BLOCK_Q):
            n_t = min(BLOCK_Q, q_hi - q0)
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
                np.max(scores.reshape(GROUP, n_groups * n_t), axis=0, out=m.reshape(-1))
                h = hit[: n_groups * n_t].reshape(n_groups, n_t)
                np.greater(m, tau, out=h)  # strict: on a tie the earlier (smaller) index already wins
                if not h.any():
                    continue
                g, r = np.nonzero(h)
                j = (g[:, None] + members).ravel()  # every member of each hit group
                r = np.repeat(r, GROUP)
                keep = scores[j, r] > tau[r]  # only the members that beat the bar
                j, r = j[keep], r[keep]
            best.push(r + q0 - q_lo, j + s, scores[j, r])
    best.flush()
    return best


_controller = None


def blas_threads(n: int) -> Any:
    """A context manager limiting NumPy's BLAS to ``n`` threads (threadpoolctl comes with scikit-learn)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")


def parallel(fn: Callable[[int], Any], n_tasks: int) -> list[Any]:
    """``[fn(0), ..., fn(n_tasks - 1)]`` on torch's CPU threads, each calling single-threaded BLAS.

    Small matrix products gain nothing from BLAS threads (and on a busy machine their spinning
    threads cost a lot); one Python thread per core, each with its own slice of work, scales better.
    """
    n_threads = min(torch.get_num_threads(), n_tasks)
    with blas_threads(1):
        if n_threads <= 1:
            return [fn(t) for t in range(n_tasks)]
        with ThreadPoolExecutor(n_threads) as pool:
            return list(pool.map(fn, range(n_tasks)))


def threaded_topk(n_q: int, n: int, k: int, dtype: np.dtype,
                  prepare: Callable[[int, int], TileFn]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`search_tiles` for all ``n_q`` queries over all ``n`` rows, split over the CPU threads."""
    n_threads = torch.get_num_threads()
    if n >= 2 * ROWS_PER_THREAD and n_threads > 1:
        # each thread: a contiguous slice of the database rounded to whole tiles, so indices stay ordered
        cuts = [min(n, round(n * t / n_threads / BLOCK_N) * BLOCK_N) for t in range(n_threads)] + [n]
        parts = parallel(lambda t: search_tiles(k, dtype, (cuts[t], cuts[t + 1]), (0, n_q), prepare), n_threads)
        return segmented_topk(np.repeat(np.arange(n_q), k * n_threads),
                              np.concatenate([p.indices for p in parts], axis=1).ravel(),
                              np.concatenate([p.values for p in parts], axis=1).ravel(), n_q, k)
    # a small database: each thread takes whole blocks of queries instead
    n_parts = max(1, min(n_threads, n_q // BLOCK_Q))
    cuts = [min(n_q, round(n_q * t / n_parts / BLOCK_Q) * BLOCK_Q) for t in range(n_parts)] + [n_q]
    parts = parallel(lambda t: search_tiles(k, dtype, (0, n), (cuts[t], cuts[t + 1]), prepare), n_parts)
    return np.concatenate([p.values for p in parts]), np.concatenate([p.indices for p in parts])


def nearest_centroid(x: np.ndarray, c: np.ndarray, spherical: bool) -> tuple[np.ndarray, np.ndarray]:
    r"""Index of the nearest centroid of each row of ``x (N, D)`` among ``c (K, D)``, and its score.

    The score is $x\cdot c$ (``spherical``) or $x\cdot c - \lVert c\rVert^2/2$, whose argmax is the argmin of
    the squared distance; ties go to the smaller centroid index. Blocks of 4,096 rows run on the CPU threads.
    """
    bias = None if spherical else -0.5 * np.einsum("ij,ij->i", c, c)
    labels = np.empty(len(x), np.int64)
    best = np.empty(len(x), x.dtype)

    def chunk(t: int) -> None:
        rows = slice(4096 * t, 4096 * (t + 1))
        scores = x[rows] @ c.T  # (B, K)
        if bias is not None:
            scores += bias
        labels[rows] = scores.argmax(1)  # the first maximum: ties go to the smaller centroid index
        best[rows] = np.take_along_axis(scores, labels[rows, None], 1)[:, 0]

    parallel(chunk, -(-len(x) // 4096))
    return labels, best


# ----------------------------------------------------------------------------- exact search
def topk_numpy(q: Tensor, x: Tensor, k: int, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """Exact cosine top-k of ``q (Q, D)`` over ``x (N, D)`` on the CPU: NumPy BLAS tiles on the CPU threads."""
    dtype = np.float64 if torch.float64 in (q.dtype, x.dtype) else np.float32
    qn = unit_rows(as_numpy(q, dtype), eps, "topk_search: query")
    xs = as_numpy(x, dtype)

    def prepare(s: int, e: int) -> TileFn:
        xb = unit_rows(xs[s:e], eps, "topk_search: database", s)  # (n_b, D), normalised once per block
        return lambda q0, q1, out: np.matmul(xb, qn[q0:q1].T, out=out)

    values, indices = threaded_topk(qn.shape[0], xs.shape[0], k, qn.dtype, prepare)
    return torch.from_numpy(values), torch.from_numpy(indices)


def topk_torch(q: Tensor, x: Tensor, k: int, eps: float = EPS, block: int = 65536) -> tuple[Tensor, Tensor]:
    """The same search in torch (the GPU path): per block, a stable sort keeps ties in index order."""
    unit = lambda v: v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(eps)  # noqa: E731
    qn = unit(q.detach())
    n = x.shape[0]
    block = max(k, min(block, max(1, 2**26 // q.shape[0])))  # keep a block's scores near 256 MB or less
    best_v = best_i = None
    for s in range(0, n, block):
        scores = qn @ unit(x[s:s + block].detach()).T  # (Q, n_b)
        ids = torch.arange(s, s + scores.shape[1], device=x.device).expand_as(scores)
        if best_v is not None:  # the running best comes first: on equal scores, smaller indices stay ahead
            scores, ids = torch.cat([best_v, scores], 1), torch.cat([best_i, ids], 1)
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        best_v, best_i = scores.gather(1, order), ids.gather(1, order)
    return best_v, best_i
