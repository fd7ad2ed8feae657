r"""Chapter 6: the inverted file (faiss ``IndexIVFFlat``): k-means cells, a query scores only the vectors of
its ``n_probe`` nearest cells.

$$\mathrm{IVF}_k(\vec q) = \operatorname*{arg\,top\text{-}k}_{i:\ z_i \in P(\vec q)}\ \hat q\cdot\hat x_i, \qquad
P(\vec q) = \operatorname*{arg\,top\text{-}n_{probe}}_{l}\ \hat q\cdot c_l$$
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._search import int_in, parallel, segmented_topk
from ._index import Index
from .cluster import kmeans


def _top_k_bar(scores: np.ndarray, k: int) -> np.ndarray:
    r"""Per column of ``scores (n, m)`` a bar at or below its k-th largest score, found cheaply.

    Cut the rows into disjoint groups and take each group's maximum. The k-th largest maximum $b$ is reached
    by k groups, hence by at least k scores, so $b \le$ the k-th largest score and ``scores >= b`` keeps the
    k best, any ties with the k-th, and (with about 8k groups) a few more. The k-th largest of ~8k maxima is
    a much smaller partial sort than among n scores.
    """
    n, span = len(scores), 8 * k
    if n <= k:
        return np.full(scores.shape[1], -np.inf, scores.dtype)  # keep them all
    if n >= 2 * span:  # group g = rows g, g + span, g + 2 span, ...: a max over n // span slabs
        whole = n // span * span
        scores = np.concatenate([scores[:whole].reshape(-1, span, scores.shape[1]).max(0), scores[whole:]])
    return np.partition(scores, len(scores) - k, axis=0)[len(scores) - k]  # (m,)


class IVFIndex(Index):
    """Inverted file: ``n_lists`` k-means cells, each holding the vectors closest to its centroid.

    ``train(x)`` learns the centroids, ``add(x)`` files the vectors (ids 0, 1, ... in order of addition),
    ``search(queries, k, n_probe)`` scans the ``n_probe`` cells whose centroids are most similar to each
    query. ``n_probe = n_lists`` is exact search, fewer is faster and approximate. Raises ``TypeError`` /
    ``ValueError`` for a non-int or non-positive ``dim`` or ``n_lists``.
    """

    def __init__(self, dim: int, n_lists: int, n_iter: int = 10, seed: int = 0) -> None:
        super().__init__(dim)
        self.n_lists = int_in("IVFIndex: n_lists", n_lists)
        self.n_iter, self.seed = n_iter, seed
        self.centroids: Tensor | None = None  # (n_lists, D) unit rows
        self._vectors = np.empty((0, dim), np.float32)  # (N, D) unit rows, grouped by cell
        self._ids = np.empty(0, np.int64)  # (N,) id of each stored row
        self._cell = np.empty(0, np.int64)  # (N,) cell of each stored row
        self.offsets = np.zeros(n_lists + 1, np.int64)  # cell l holds rows offsets[l]:offsets[l + 1]

    def train(self, x: Tensor) -> IVFIndex:
        """Learn the ``n_lists`` centroids from ``x (N, dim)`` by spherical k-means; ``ValueError`` if N < n_lists."""
        xs = self._unit(x, "IVFIndex.train")
        if len(xs) < self.n_lists:
            raise ValueError(f"IVFIndex.train: need at least n_lists={self.n_lists} training vectors, got {len(xs)}")
        self.centroids = kmeans(torch.from_numpy(xs), self.n_lists, self.n_iter, seed=self.seed)
        self.is_trained = True
        return self

    def _probe(self, xs: np.ndarray, n_probe: int) -> np.ndarray:
        r"""The ``n_probe`` cells most similar to each row ``(B, n_probe)``, ties to the smaller cell.

        Per block of rows one product $S = X C^\top$ (B, n_lists), then the top n_probe of each row of $S$ (in
        no particular order). ``torch.topk`` breaks ties arbitrarily, so a row where more cells than places
        tie with its n_probe-th score is redone with a stable sort.
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

        parallel(chunk, -(-len(xs) // 256))
        return out

    def add(self, x: Tensor) -> IVFIndex:
        """File the rows of ``x (N, dim)`` in the cells of their nearest centroids; ids continue from ``ntotal``."""
        self._ready("add")
        xs = self._unit(x, "IVFIndex.add")
        cell = np.concatenate([self._cell, self._probe(xs, 1)[:, 0]])
        order = np.argsort(cell, kind="stable")  # group by cell; ids stay ascending inside a cell
        self._vectors = np.concatenate([self._vectors, xs])[order]
        self._ids = np.concatenate([self._ids, np.arange(self.ntotal, self.ntotal + len(xs))])[order]
        self._cell = cell[order]
        self.offsets = np.searchsorted(self._cell, np.arange(self.n_lists + 1))
        self.ntotal += len(xs)
        return self

    def list_sizes(self) -> np.ndarray:
        """The number of vectors filed in each cell, ``(n_lists,)``."""
        return np.diff(self.offsets)

    def _search_inputs(self, queries: Tensor, k: int, n_probe: int, fn: str) -> tuple[np.ndarray, int, int]:
        self._ready("search")
        qn = self._unit(queries, fn)
        return qn, int_in(f"{fn}: k", k), int_in(f"{fn}: n_probe", n_probe, 1, self.n_lists)

    @torch.no_grad()
    def reference_search(self, queries: Tensor, k: int, n_probe: int = 1) -> tuple[Tensor, Tensor]:
        r"""The faiss tutorial's IVF search, one query at a time: what :meth:`search` computes, readably.

        For each unit query $\hat q$: its ``n_probe`` most similar centroids, the vectors $\hat x_i$ filed in
        those cells, their cosines $\hat q\cdot\hat x_i$, the best ``k`` (ties to the smaller id, padded with
        -inf and -1). Same arguments, result and errors as :meth:`search`; slow, and holds a copy of the database.
        """
        q, k, n_probe = self._search_inputs(queries, k, n_probe, "IVFIndex.reference_search")
        by_id = torch.from_numpy(np.argsort(self._ids))
        x, cell = torch.from_numpy(self._vectors)[by_id], torch.from_numpy(self._cell)[by_id]  # (N, D), (N,) by id
        scores, indices = torch.full((len(q), k), -torch.inf), torch.full((len(q), k), -1)
        for r, q_r in enumerate(torch.from_numpy(q)):
            probed = torch.sort(self.centroids @ q_r, descending=True, stable=True).indices[:n_probe]  # nearest cells
            ids = torch.nonzero(torch.isin(cell, probed)).squeeze(1)  # the vectors filed there, ids ascending
            s, top = torch.sort(x[ids] @ q_r, descending=True, stable=True)  # exact cosines, ties to the smaller id
            n = min(k, len(ids))
            scores[r, :n], indices[r, :n] = s[:n], ids[top[:n]]
        return scores, indices

    @torch.no_grad()
    def search(self, queries: Tensor, k: int, n_probe: int = 1) -> tuple[Tensor, Tensor]:
        r"""The best ``k`` vectors among those filed in each query's ``n_probe`` nearest cells, by cosine.

        ``queries (Q, dim)``; returns ``scores (Q, k)`` (descending, float32) and ``indices (Q, k)`` (int64 ids,
        ties to the smaller id), -inf and -1 where fewer than k vectors were scanned: the answer of
        :meth:`reference_search`. The fast path works cell by cell: all queries that probe a cell are scored
        against it with one matrix product, the cells split over the CPU threads in tasks of equal work.

        Raises ``RuntimeError`` before ``train``/``add``; ``TypeError``/``ValueError`` for bad queries (not float,
        empty, wrong dimension, inf or NaN), ``k < 1`` or ``n_probe`` outside ``[1, n_lists]``.
        """
        qn, k, n_probe = self._search_inputs(queries, k, n_probe, "IVFIndex.search")
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
        parts = parallel(lambda t: self._scan(qt, pairs, cells[cuts[t]:cuts[t + 1]],
                                              starts[cuts[t]:cuts[t + 1] + 1], k), len(cuts) - 1)
        pos, rows, vals, bars = (np.concatenate(p) for p in zip(*parts, strict=True))
        # at least k candidates of a query reach the bar of each of its pairs: those below the highest bar can go
        query_bar = np.full(len(qn), -np.inf, np.float32)
        np.maximum.at(query_bar, pairs, bars)  # (Q,)
        who = pairs[pos]
        keep = vals >= query_bar[who]
        return self._as_torch(*segmented_topk(who[keep], self._ids[rows[keep]], vals[keep], len(qn), k))

    def _scan(self, qt: np.ndarray, pairs: np.ndarray, cells: list[int], starts: list[int],
              k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Score the queries that probe each cell against that cell's vectors; keep each query's top k.

        Pair p (a query and a cell it probes) gets column p of ``scores (W, P)``: the scores of the cell's
        vectors, padded with -inf to W rows (the cells come sorted by size, so little is padding). Each cell
        costs one product; the selection is then done for all pairs at once, keeping the scores at or above
        ``_top_k_bar`` (at most the k-th best of the column). Returns (position in ``pairs``, stored row,
        score) of every kept candidate, and the bars ``(P,)``.
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

    def bytes_per_vector(self) -> float:
        """Stored bytes per database vector: the float32 vector, its int64 id, a share of the centroids."""
        return 4 * self.dim + 8 + 4 * self.dim * self.n_lists / max(self.ntotal, 1)
