"""Chapter 4: approximate nearest-neighbour indexes, each small enough to read in one sitting.

Exact search scores every database vector. These indexes score fewer, or cheaper, vectors:

* ``kmeans``: Lloyd's algorithm, $c_j = \\mathrm{mean}\\{x_i : j = \\arg\\min_l \\lVert x_i - c_l\\rVert\\}$
  (spherical variant for cosine: assign by $\\arg\\max_l x_i\\cdot c_l$, renormalise the means).
* ``IVFIndex``: an inverted file. k-means cuts the space into ``n_lists`` cells; a query scores
  only the vectors of its ``n_probe`` nearest cells (faiss ``IndexIVFFlat``).
* ``LSHIndex``: random-hyperplane LSH, $h(x) = [\\,r_1\\cdot x \\ge 0, \\dots, r_b\\cdot x \\ge 0\\,]$; two
  vectors at angle $\\theta$ share a bit with probability $1 - \\theta/\\pi$. Vectors sharing a
  bucket in any of ``n_tables`` tables become candidates, re-ranked by exact cosine.
* ``PQIndex``: product quantisation. Each vector becomes ``m`` one-byte codes (the nearest of 256
  centroids in each of ``m`` sub-spaces); scores are sums of ``m`` table look-ups,
  $q\\cdot x \\approx \\sum_j q^{(j)}\\cdot c^{(j)}_{\\mathrm{code}_j(x)}$ (faiss ``IndexPQ``).

All of them search by cosine: vectors are normalised when added, queries when searched. Each
``search(queries, k, ...)`` returns ``(scores (Q, k), indices (Q, k))`` like ``topk_search``, with
index -1 and score -inf where fewer than k vectors were found.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .similarity import (
    _BLOCK_Q,
    TileFn,
    _as_numpy,
    _check_k,
    _check_matrix,
    _parallel,
    _segmented_topk,
    _threaded_topk,
    _unit_rows,
)

__all__ = ["kmeans", "IVFIndex", "LSHIndex", "PQIndex"]

_EPS = 1e-8


def _positive_int(value: object, name: str, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must lie in [{low}, {high if high is not None else 'inf'}], got {value}")
    return int(value)


# ----------------------------------------------------------------------------- k-means
def _nearest(x: np.ndarray, c: np.ndarray, spherical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid per row and its score ($x\\cdot c$, or $x\\cdot c - \\lVert c\\rVert^2/2$)."""
    bias = None if spherical else -0.5 * np.einsum("ij,ij->i", c, c)
    labels = np.empty(len(x), np.int64)
    best = np.empty(len(x), x.dtype)

    def chunk(t: int) -> None:
        rows = slice(4096 * t, 4096 * (t + 1))
        scores = x[rows] @ c.T  # (B, K)
        if bias is not None:
            scores += bias  # x.c - |c|^2 / 2: its argmax is the argmin of the squared distance
        labels[rows] = scores.argmax(1)  # first maximum: ties go to the smaller centroid index
        best[rows] = np.take_along_axis(scores, labels[rows, None], 1)[:, 0]

    _parallel(chunk, -(-len(x) // 4096))
    return labels, best


def kmeans(x: Tensor, n_clusters: int, n_iter: int = 10, *, spherical: bool = True, seed: int = 0,
           max_points_per_cluster: int = 256) -> Tensor:
    """Lloyd's k-means on the rows of ``x (N, D)``; returns the centroids ``(n_clusters, D)`` (float32).

    Alternate two steps ``n_iter`` times: assign each point to its nearest centroid, move each
    centroid to the mean of its points. ``spherical=True`` (for cosine) normalises the points and
    the means. Starts from ``n_clusters`` distinct random points; an empty cluster takes the point
    that fits worst. Like faiss, trains on at most ``max_points_per_cluster * n_clusters`` points.
    """
    _check_matrix(x, "x", "kmeans")
    n_clusters = _positive_int(n_clusters, "kmeans: n_clusters", 1, x.shape[0])
    n_iter = _positive_int(n_iter, "kmeans: n_iter", 0)
    rng = np.random.default_rng(seed)
    xs = _as_numpy(x)
    if len(xs) > max_points_per_cluster * n_clusters:
        xs = xs[np.sort(rng.choice(len(xs), max_points_per_cluster * n_clusters, replace=False))]
    if spherical:
        xs = _unit_rows(xs, _EPS, "kmeans: x")
    c = xs[rng.choice(len(xs), n_clusters, replace=False)].copy()  # (K, D)
    for _ in range(n_iter):
        labels, fit = _nearest(xs, c, spherical)
        counts = np.bincount(labels, minlength=n_clusters)
        sums = torch.zeros(n_clusters, xs.shape[1]).index_add_(0, torch.from_numpy(labels), torch.from_numpy(xs))
        c = sums.numpy() / np.maximum(counts, 1)[:, None]  # (K, D): the mean of each cluster
        empty = np.flatnonzero(counts == 0)
        if len(empty):  # re-seed empty clusters with the worst-fitting points
            c[empty] = xs[np.argsort(fit, kind="stable")[: len(empty)]]
        if spherical:
            c = _unit_rows(c, _EPS, "kmeans: centroid")
    return torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))


# ----------------------------------------------------------------------------- common checks
def _check_vectors(x: Tensor, dim: int, fn: str) -> np.ndarray:
    """``x (N, dim)`` as float32 NumPy with unit rows."""
    _check_matrix(x, "x" if "search" not in fn else "queries", fn)
    if x.shape[1] != dim:
        raise ValueError(f"{fn}: expected vectors of dimension {dim} (the index's dim), got shape {tuple(x.shape)}")
    return _unit_rows(_as_numpy(x), _EPS, fn + ":")


class _Index:
    """Shared bookkeeping: ``dim``, ``ntotal``, the 'call train/add first' errors."""

    needs_training = True

    def __init__(self, dim: int) -> None:
        self.dim = _positive_int(dim, f"{type(self).__name__}: dim")
        self.is_trained = not self.needs_training
        self.ntotal = 0

    def _ready(self, what: str) -> None:
        name = type(self).__name__
        if not self.is_trained:
            raise RuntimeError(f"{name}.{what}: the index is not trained; call .train(x) first")
        if what == "search" and self.ntotal == 0:
            raise RuntimeError(f"{name}.search: the index is empty; call .add(x) first")

    def _as_torch(self, values: np.ndarray, indices: np.ndarray) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(np.ascontiguousarray(values)), torch.from_numpy(np.ascontiguousarray(indices))


# ----------------------------------------------------------------------------- inverted file
def _top_k_bar(scores: np.ndarray, k: int) -> np.ndarray:
    """Per column of ``scores (n, m)`` a bar at or below its k-th largest score, found cheaply.

    Cut the rows into disjoint groups and take each group's maximum. The k-th largest maximum
    $b$ is reached by k groups, hence by at least k scores, so $b \\le$ the k-th largest score and
    ``scores >= b`` keeps the k best, any ties with the k-th, and (with about 8k groups) a few
    more. The k-th largest of ~8k maxima is a much smaller partial sort than among n scores.
    """
    n, span = len(scores), 8 * k
    if n <= k:
        return np.full(scores.shape[1], -np.inf, scores.dtype)  # keep them all
    if n >= 2 * span:  # group g = rows g, g + span, g + 2 span, ...: a max over n // span slabs
        whole = n // span * span
        scores = np.concatenate([scores[:whole].reshape(-1, span, scores.shape[1]).max(0), scores[whole:]])
    return np.partition(scores, len(scores) - k, axis=0)[len(scores) - k]  # (m,)


class IVFIndex(_Index):
    """Inverted file: ``n_lists`` k-means cells, each holding the vectors closest to its centroid.

    ``train(x)`` learns the centroids, ``add(x)`` files the vectors (ids 0, 1, ... in order of
    addition), ``search(queries, k, n_probe)`` scans the ``n_probe`` cells whose centroids are most
    similar to each query. ``n_probe = n_lists`` is exact search, fewer is faster and approximate.
    """

    def __init__(self, dim: int, n_lists: int, n_iter: int = 10, seed: int = 0) -> None:
        super().__init__(dim)
        self.n_lists = _positive_int(n_lists, "IVFIndex: n_lists")
        self.n_iter, self.seed = n_iter, seed
        self.centroids: Tensor | None = None  # (n_lists, D) unit rows
        self._vectors = np.empty((0, dim), np.float32)  # (N, D) unit rows, grouped by cell
        self._ids = np.empty(0, np.int64)  # (N,) id of each stored row
        self._cell = np.empty(0, np.int64)  # (N,) cell of each stored row
        self.offsets = np.zeros(n_lists + 1, np.int64)  # cell l holds rows offsets[l]:offsets[l + 1]

    def train(self, x: Tensor) -> IVFIndex:
        xs = _check_vectors(x, self.dim, "IVFIndex.train")
        if len(xs) < self.n_lists:
            raise ValueError(f"IVFIndex.train: need at least n_lists={self.n_lists} training vectors, got {len(xs)}")
        self.centroids = kmeans(torch.from_numpy(xs), self.n_lists, self.n_iter, seed=self.seed)
        self.is_trained = True
        return self

    def _probe(self, xs: np.ndarray, n_probe: int) -> np.ndarray:
        """The ``n_probe`` cells most similar to each row ``(B, n_probe)``, ties to the smaller cell.

        Per block of rows one product $S = X C^\\top$ (B, n_lists), then the top n_probe of each row
        of $S$ (in no particular order). ``torch.topk`` breaks ties arbitrarily, so a row where more
        cells than places tie with its n_probe-th score is redone with a stable sort.
        """
        c = self.centroids.numpy()
        out = np.empty((len(xs), n_probe), np.int64)

        def chunk(t: int) -> None:
            rows = slice(256 * t, 256 * (t + 1))
            scores = xs[rows] @ c.T  # (B, n_lists)
            if n_probe == 1:
                out[rows, 0] = scores.argmax(1)  # the first maximum: ties go to the smaller cell
                return
            top = torch.topk(torch.from_numpy(scores), n_probe, dim=1, sorted=False)
            cells, tau = top.indices.numpy(), top.values.numpy().min(1, keepdims=True)  # (B, n_probe), (B, 1)
            tied = (scores >= tau).sum(1) > n_probe  # (B,)
            cells[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :n_probe]
            out[rows] = cells

        _parallel(chunk, -(-len(xs) // 256))
        return out

    def add(self, x: Tensor) -> IVFIndex:
        self._ready("add")
        xs = _check_vectors(x, self.dim, "IVFIndex.add")
        cell = np.concatenate([self._cell, self._probe(xs, 1)[:, 0]])
        order = np.argsort(cell, kind="stable")  # group by cell; ids stay ascending inside a cell
        self._vectors = np.concatenate([self._vectors, xs])[order]
        self._ids = np.concatenate([self._ids, np.arange(self.ntotal, self.ntotal + len(xs))])[order]
        self._cell = cell[order]
        self.offsets = np.searchsorted(self._cell, np.arange(self.n_lists + 1))
        self.ntotal += len(xs)
        return self

    def list_sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def _scan(self, qt: np.ndarray, pairs: np.ndarray, cells: list[int], starts: list[int],
              k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Score the queries that probe each cell against that cell's vectors; keep each query's top k.

        Pair p (a query and a cell it probes) gets column p of ``scores (W, P)``: the scores of the
        cell's vectors, padded with -inf to W rows (the cells come sorted by size, so little is
        padding). Each cell costs one product; the selection is then done for all pairs at once,
        keeping the scores at or above ``_top_k_bar`` (at most the k-th best of the column).
        Returns (position in ``pairs``, stored row, score) of every kept candidate, and the bars ``(P,)``.
        """
        bounds, a0 = self.offsets.tolist(), starts[0]
        q = qt.take(pairs[a0:starts[-1]], axis=1)  # (D, P): the query of each pair, as a column
        width = max(bounds[c + 1] - bounds[c] for c in cells)
        scores = np.full((width, starts[-1] - a0), -np.inf, np.float32)  # (W, P)
        for c, a, b in zip(cells, starts[:-1], starts[1:], strict=True):
            lo, hi = bounds[c], bounds[c + 1]
            # (n_c, D) @ (D, n_q): one product for all queries probing cell c, written in place
            np.matmul(self._vectors[lo:hi], q[:, a - a0:b - a0], out=scores[: hi - lo, a - a0:b - a0])
        bar = np.maximum(_top_k_bar(scores, k), np.finfo(np.float32).min)  # (P,): never the -inf padding
        j, p = np.nonzero(scores >= bar)  # the k best of each pair, its ties, and a few more
        first = np.repeat(self.offsets[cells], np.diff(starts))  # (P,) the first stored row of each pair's cell
        return p + a0, first[p] + j, scores[j, p], bar

    @torch.no_grad()
    def search(self, queries: Tensor, k: int, n_probe: int = 1) -> tuple[Tensor, Tensor]:
        self._ready("search")
        qn = _check_vectors(queries, self.dim, "IVFIndex.search")
        _check_k(k, 2**62, "IVFIndex.search", "results")
        n_probe = _positive_int(n_probe, "IVFIndex.search: n_probe", 1, self.n_lists)
        probe = self._probe(qn, n_probe)  # (Q, n_probe)
        # cell-major: all queries that probe cell c are scored against it with one matrix product.
        # Cells go in order of size (then index), so the cells of one task need little padding.
        sizes = self.list_sizes()
        order = np.argsort((sizes[probe] * self.n_lists + probe).ravel(), kind="stable")
        pairs = order // n_probe  # query of each (query, cell) pair, grouped by cell
        cell_of = probe.ravel()[order]
        firsts = np.flatnonzero(np.r_[True, cell_of[1:] != cell_of[:-1]])
        cells, starts = cell_of[firsts].tolist(), [*firsts.tolist(), len(order)]
        work = np.cumsum(np.diff(starts) * sizes[cells])  # scores computed, up to each cell
        # split the cells into tasks of about equal work: at least one per thread, at most ~4M scores each
        n_threads = min(torch.get_num_threads(), max(1, int(work[-1]) // 100_000))
        n_tasks = min(len(cells), max(n_threads, -(-int(work[-1]) // 2**22)))
        cuts = np.unique([0, *np.searchsorted(work, work[-1] * np.arange(1, n_tasks) / n_tasks), len(cells)]).tolist()
        qt = np.ascontiguousarray(qn.T)  # (D, Q)
        parts = _parallel(lambda t: self._scan(qt, pairs, cells[cuts[t]:cuts[t + 1]],
                                               starts[cuts[t]:cuts[t + 1] + 1], k), len(cuts) - 1)
        pos, rows, vals, bars = (np.concatenate(p) for p in zip(*parts, strict=True))
        # at least k candidates of a query reach the bar of each of its pairs: those below the highest bar can go
        query_bar = np.full(len(qn), -np.inf, np.float32)
        np.maximum.at(query_bar, pairs, bars)  # (Q,)
        who = pairs[pos]
        keep = vals >= query_bar[who]
        return self._as_torch(*_segmented_topk(who[keep], self._ids[rows[keep]], vals[keep], len(qn), k))

    def bytes_per_vector(self) -> float:
        """Stored bytes per database vector: the float32 vector, its int64 id, a share of the centroids."""
        return 4 * self.dim + 8 + 4 * self.dim * self.n_lists / max(self.ntotal, 1)


# ----------------------------------------------------------------------------- LSH
class LSHIndex(_Index):
    """Random-hyperplane LSH with ``n_tables`` hash tables of ``n_bits`` bits each, exact re-ranking.

    $h_t(x) = \\sum_b 2^b\\,[\\,r_{t,b}\\cdot x \\ge 0\\,]$ with Gaussian $r_{t,b}$. ``search(queries, k,
    n_tables)`` looks up each query's bucket in the first ``n_tables`` tables, takes the union of
    the vectors found there and ranks them by exact cosine. More tables: higher recall, more work.
    Needs no training (the hyperplanes are random).
    """

    needs_training = False

    def __init__(self, dim: int, n_tables: int = 16, n_bits: int = 12, seed: int = 0) -> None:
        super().__init__(dim)
        self.n_tables = _positive_int(n_tables, "LSHIndex: n_tables")
        self.n_bits = _positive_int(n_bits, "LSHIndex: n_bits", 1, 30)
        g = torch.Generator().manual_seed(seed)
        self.planes = torch.randn(self.n_tables * self.n_bits, dim, generator=g).numpy()  # (T b, D)
        self._vectors = np.empty((0, dim), np.float32)  # (N, D) unit rows, for re-ranking
        self._order = np.empty((self.n_tables, 0), np.int32)  # (T, N) ids sorted by bucket key
        self._keys = np.empty((self.n_tables, 0), np.int32)  # (T, N) sorted bucket keys

    def hash(self, xs: np.ndarray) -> np.ndarray:
        """Bucket keys ``(T, N)``: the sign bits of ``x @ planes.T``, ``n_bits`` per table, packed in an int."""
        bits = (xs @ self.planes.T >= 0).reshape(len(xs), self.n_tables, self.n_bits)  # (N, T, b)
        return (bits.astype(np.int32) << np.arange(self.n_bits, dtype=np.int32)).sum(-1, dtype=np.int32).T

    def add(self, x: Tensor) -> LSHIndex:
        xs = _check_vectors(x, self.dim, "LSHIndex.add")
        self._vectors = np.concatenate([self._vectors, xs])
        keys = self.hash(self._vectors)  # (T, N)
        self._order = np.argsort(keys, axis=1, kind="stable").astype(np.int32)
        self._keys = np.take_along_axis(keys, self._order, axis=1)
        self.ntotal = len(self._vectors)
        return self

    def candidates(self, qn: np.ndarray, n_tables: int) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (query, id) pairs that share a bucket in any of the first ``n_tables`` tables."""
        q_keys = self.hash(qn)[:n_tables]  # (t, Q)
        pairs = []
        for t in range(n_tables):
            lo = np.searchsorted(self._keys[t], q_keys[t], "left")  # bucket = a run of equal keys
            hi = np.searchsorted(self._keys[t], q_keys[t], "right")
            counts = hi - lo
            first = np.repeat(lo - np.cumsum(counts) + counts, counts)  # lo of each pair's query, minus its offset
            pos = first + np.arange(counts.sum())
            pairs.append(np.repeat(np.arange(len(qn)), counts) * self.ntotal + self._order[t][pos])
        pairs = np.unique(np.concatenate(pairs))  # query-major, ids ascending, duplicates removed
        return pairs // self.ntotal, pairs % self.ntotal

    @torch.no_grad()
    def search(self, queries: Tensor, k: int, n_tables: int | None = None) -> tuple[Tensor, Tensor]:
        self._ready("search")
        qn = _check_vectors(queries, self.dim, "LSHIndex.search")
        _check_k(k, 2**62, "LSHIndex.search", "results")
        n_tables = _positive_int(self.n_tables if n_tables is None else n_tables, "LSHIndex.search: n_tables",
                                 1, self.n_tables)
        rows, ids = self.candidates(qn, n_tables)
        vals = np.empty(len(rows), np.float32)
        for s in range(0, len(rows), 65536):  # exact cosine of each candidate pair, in chunks
            vals[s:s + 65536] = np.einsum("ij,ij->i", qn[rows[s:s + 65536]], self._vectors[ids[s:s + 65536]])
        return self._as_torch(*_segmented_topk(rows, ids, vals, len(qn), k))

    def bytes_per_vector(self) -> float:
        """The float32 vector (for re-ranking) plus, per table, an int32 key and an int32 id."""
        return 4 * self.dim + 8 * self.n_tables + 4 * self.planes.size / max(self.ntotal, 1)


# ----------------------------------------------------------------------------- product quantisation
class PQIndex(_Index):
    """Product quantiser: ``m`` sub-vectors of ``dim / m`` numbers, each replaced by a 1-byte code.

    ``train(x)`` runs k-means with $2^{\\text{n\\_bits}}$ centroids in each sub-space, ``add(x)``
    stores only the codes (``m`` bytes a vector), ``search`` scores every code with table look-ups
    (asymmetric distance computation: the query stays exact, the database is quantised) and keeps
    the exact top-k of those approximate scores.
    """

    def __init__(self, dim: int, m: int = 16, n_bits: int = 8, n_iter: int = 15, seed: int = 0) -> None:
        super().__init__(dim)
        self.m = _positive_int(m, "PQIndex: m", 1, dim)
        if dim % self.m:
            raise ValueError(f"PQIndex: dim={dim} must be divisible by m={m}")
        self.n_bits = _positive_int(n_bits, "PQIndex: n_bits", 1, 8)
        self.n_iter, self.seed = n_iter, seed
        self.codebooks: np.ndarray | None = None  # (m, 2^n_bits, dim / m)
        self.codes = np.empty((self.m, 0), np.uint8)  # (m, N): sub-space major, for contiguous look-ups

    def train(self, x: Tensor) -> PQIndex:
        xs = _check_vectors(x, self.dim, "PQIndex.train")
        n_codes = 2**self.n_bits
        if len(xs) < n_codes:
            raise ValueError(f"PQIndex.train: need at least {n_codes} training vectors, got {len(xs)}")
        subs = xs.reshape(len(xs), self.m, -1)  # (N, m, D / m)
        self.codebooks = np.stack([kmeans(torch.from_numpy(np.ascontiguousarray(subs[:, j])), n_codes,
                                          self.n_iter, spherical=False, seed=self.seed + j).numpy()
                                   for j in range(self.m)])
        self.is_trained = True
        return self

    def encode(self, xs: np.ndarray) -> np.ndarray:
        """Codes ``(m, N)``: the nearest codebook entry of each sub-vector."""
        subs = xs.reshape(len(xs), self.m, -1)
        return np.stack([_nearest(np.ascontiguousarray(subs[:, j]), self.codebooks[j], False)[0]
                         for j in range(self.m)]).astype(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Approximate vectors ``(N, D)`` from codes ``(m, N)``."""
        return np.concatenate([self.codebooks[j][codes[j]] for j in range(self.m)], axis=1)

    def add(self, x: Tensor) -> PQIndex:
        self._ready("add")
        xs = _check_vectors(x, self.dim, "PQIndex.add")
        self.codes = np.concatenate([self.codes, self.encode(xs)], axis=1)
        self.ntotal = self.codes.shape[1]
        return self

    @torch.no_grad()
    def search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        self._ready("search")
        qn = _check_vectors(queries, self.dim, "PQIndex.search")
        _check_k(k, self.ntotal, "PQIndex.search")
        n_q = len(qn)
        # look-up tables: lut[j, c, r] = q_r^(j) . codebook_j[c], stored per block of queries
        lut = np.einsum("qjd,jcd->jcq", qn.reshape(n_q, self.m, -1), self.codebooks)  # (m, 2^b, Q)
        lut_blocks = [np.ascontiguousarray(lut[:, :, q0:q0 + _BLOCK_Q]) for q0 in range(0, n_q, _BLOCK_Q)]

        def prepare(s: int, e: int) -> TileFn:
            codes = self.codes[:, s:e].astype(np.intp)  # (m, n_b)
            buf = np.empty((e - s) * _BLOCK_Q, np.float32)

            def fill(q0: int, q1: int, out: np.ndarray) -> None:
                table = lut_blocks[q0 // _BLOCK_Q]  # (m, 2^b, Q_b)
                tmp = buf[: out.size].reshape(out.shape)
                np.take(table[0], codes[0], axis=0, out=out)  # a gathered row of Q_b scores per vector
                for j in range(1, self.m):
                    np.take(table[j], codes[j], axis=0, out=tmp)
                    out += tmp
            return fill

        values, indices = _threaded_topk(n_q, self.ntotal, k, np.float32, prepare)
        return self._as_torch(values, indices)

    def bytes_per_vector(self) -> float:
        """``m`` one-byte codes (at n_bits=8) plus a share of the codebooks."""
        return self.m * self.n_bits / 8 + 4 * self.codebooks.size / max(self.ntotal, 1)
