r"""Chapter 6: random-hyperplane locality-sensitive hashing (Charikar, 2002), with exact re-ranking.

$$h_t(x) = \sum_{b=1}^{n_{bits}} 2^{b-1}\,[\,r_{t,b}\cdot x \ge 0\,], \qquad
P\big[\,[r\cdot a \ge 0] = [r\cdot b \ge 0]\,\big] = 1 - \frac{\theta_{ab}}{\pi}$$
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._search import int_in, segmented_topk
from ._index import Index


class LSHIndex(Index):
    r"""Random-hyperplane LSH with ``n_tables`` hash tables of ``n_bits`` bits each, exact re-ranking.

    $h_t(x) = \sum_b 2^b\,[\,r_{t,b}\cdot x \ge 0\,]$ with Gaussian $r_{t,b}$. ``search(queries, k, n_tables)``
    looks up each query's bucket in the first ``n_tables`` tables, takes the union of the vectors found there
    and ranks them by exact cosine. More tables: higher recall, more work. Needs no training (the hyperplanes
    are random). Raises ``TypeError``/``ValueError`` for a bad ``dim``, ``n_tables`` or ``n_bits`` (1 to 30).
    """

    needs_training = False

    def __init__(self, dim: int, n_tables: int = 16, n_bits: int = 12, seed: int = 0) -> None:
        super().__init__(dim)
        self.n_tables = int_in("LSHIndex: n_tables", n_tables)
        self.n_bits = int_in("LSHIndex: n_bits", n_bits, 1, 30)
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
        """Hash the rows of ``x (N, dim)`` into every table; ids continue from ``ntotal``."""
        xs = self._unit(x, "LSHIndex.add")
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

    def _search_inputs(self, queries: Tensor, k: int, n_tables: int | None, fn: str) -> tuple[np.ndarray, int, int]:
        self._ready("search")
        qn = self._unit(queries, fn)
        n_tables = self.n_tables if n_tables is None else n_tables
        return qn, int_in(f"{fn}: k", k), int_in(f"{fn}: n_tables", n_tables, 1, self.n_tables)

    @torch.no_grad()
    def reference_search(self, queries: Tensor, k: int, n_tables: int | None = None) -> tuple[Tensor, Tensor]:
        r"""The LSH search one query at a time: what :meth:`search` computes, readably.

        For each unit query $\hat q$: the vectors whose key equals the query's, $h_t(x_i) = h_t(q)$, in any of
        the first ``n_tables`` tables; their cosines $\hat q\cdot\hat x_i$; the best ``k`` (ties to the smaller
        id, padded with -inf and -1). Same arguments, result and errors as :meth:`search`; slow.
        """
        q, k, n_tables = self._search_inputs(queries, k, n_tables, "LSHIndex.reference_search")
        keys = np.empty_like(self._keys)
        np.put_along_axis(keys, self._order, self._keys, axis=1)  # (T, N): the key of every vector, in id order
        keys, q_keys = torch.from_numpy(keys[:n_tables]), torch.from_numpy(self.hash(q)[:n_tables])  # (t, N), (t, Q)
        x = torch.from_numpy(self._vectors)  # (N, D) unit rows, in id order
        scores, indices = torch.full((len(q), k), -torch.inf), torch.full((len(q), k), -1)
        for r, q_r in enumerate(torch.from_numpy(q)):
            ids = torch.nonzero((keys == q_keys[:, r:r + 1]).any(0)).squeeze(1)  # same bucket in some table
            s, top = torch.sort(x[ids] @ q_r, descending=True, stable=True)  # exact cosines, ties to the smaller id
            n = min(k, len(ids))
            scores[r, :n], indices[r, :n] = s[:n], ids[top[:n]]
        return scores, indices

    @torch.no_grad()
    def search(self, queries: Tensor, k: int, n_tables: int | None = None) -> tuple[Tensor, Tensor]:
        """The best ``k`` of the vectors sharing a bucket with each query in any of the first ``n_tables`` tables.

        ``queries (Q, dim)``; returns ``scores (Q, k)`` (exact cosines, descending) and ``indices (Q, k)`` (ties to
        the smaller id), -inf and -1 where fewer than k candidates were found: the answer of
        :meth:`reference_search`. The fast path finds the buckets by binary search in each table's sorted keys
        and scores all (query, candidate) pairs at once. Raises ``RuntimeError`` before ``add``;
        ``TypeError``/``ValueError`` for bad queries, ``k < 1`` or ``n_tables`` outside ``[1, self.n_tables]``.
        """
        qn, k, n_tables = self._search_inputs(queries, k, n_tables, "LSHIndex.search")
        rows, ids = self.candidates(qn, n_tables)
        vals = np.empty(len(rows), np.float32)
        for s in range(0, len(rows), 65536):  # exact cosine of each candidate pair, in chunks
            vals[s:s + 65536] = np.einsum("ij,ij->i", qn[rows[s:s + 65536]], self._vectors[ids[s:s + 65536]])
        return self._as_torch(*segmented_topk(rows, ids, vals, len(qn), k))

    def bytes_per_vector(self) -> float:
        """The float32 vector (for re-ranking) plus, per table, an int32 key and an int32 id."""
        return 4 * self.dim + 8 * self.n_tables + 4 * self.planes.size / max(self.ntotal, 1)
