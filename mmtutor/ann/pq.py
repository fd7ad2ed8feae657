r"""Chapter 6: product quantisation (Jégou et al., 2011; faiss ``IndexPQ``), searched by asymmetric distance
computation: the query stays exact, the database is stored as ``m`` one-byte codes a vector.

$$\hat q\cdot x \approx \sum_{j=1}^{m} T_j[\mathrm{code}_j(x)], \qquad T_j[c] = \hat q^{(j)}\cdot c^{(j)}_c$$
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._search import BLOCK_Q, TileFn, check_k, int_in, nearest_centroid, threaded_topk
from ._index import Index
from .cluster import kmeans


class PQIndex(Index):
    r"""Product quantiser: ``m`` sub-vectors of ``dim / m`` numbers, each replaced by a 1-byte code.

    ``train(x)`` runs k-means with $2^{\text{n\_bits}}$ centroids in each sub-space, ``add(x)`` stores only the
    codes (``m`` bytes a vector), ``search`` scores every code with table look-ups (asymmetric distance
    computation: the query stays exact, the database is quantised) and keeps the exact top-k of those
    approximate scores. Raises ``TypeError``/``ValueError`` for a bad ``dim``, ``m`` (must divide ``dim``) or
    ``n_bits`` (1 to 8).
    """

    def __init__(self, dim: int, m: int = 16, n_bits: int = 8, n_iter: int = 15, seed: int = 0) -> None:
        super().__init__(dim)
        self.m = int_in("PQIndex: m", m, 1, dim)
        if dim % self.m:
            raise ValueError(f"PQIndex: dim={dim} must be divisible by m={m}")
        self.n_bits = int_in("PQIndex: n_bits", n_bits, 1, 8)
        self.n_iter, self.seed = n_iter, seed
        self.codebooks: np.ndarray | None = None  # (m, 2^n_bits, dim / m)
        self.codes = np.empty((self.m, 0), np.uint8)  # (m, N): sub-space major, for contiguous look-ups

    def train(self, x: Tensor) -> PQIndex:
        """Learn a codebook of ``2^n_bits`` centroids per sub-space from ``x (N, dim)``; ``ValueError`` if too few."""
        xs = self._unit(x, "PQIndex.train")
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
        return np.stack([nearest_centroid(np.ascontiguousarray(subs[:, j]), self.codebooks[j], False)[0]
                         for j in range(self.m)]).astype(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Approximate vectors ``(N, D)`` from codes ``(m, N)``."""
        return np.concatenate([self.codebooks[j][codes[j]] for j in range(self.m)], axis=1)

    def add(self, x: Tensor) -> PQIndex:
        """Encode the rows of ``x (N, dim)`` and store their codes; ids continue from ``ntotal``."""
        self._ready("add")
        xs = self._unit(x, "PQIndex.add")
        self.codes = np.concatenate([self.codes, self.encode(xs)], axis=1)
        self.ntotal = self.codes.shape[1]
        return self

    def lookup_tables(self, qn: np.ndarray) -> np.ndarray:
        r"""The tables $T_j[c, r] = \hat q_r^{(j)}\cdot c^{(j)}_c$ for unit queries ``qn (Q, D)``.

        Returns ``(m, 2^n_bits, Q)`` float32: one table of ``2^n_bits`` numbers per sub-space and query.
        """
        return np.einsum("qjd,jcd->jcq", qn.reshape(len(qn), self.m, -1), self.codebooks)

    def _search_inputs(self, queries: Tensor, k: int, fn: str) -> tuple[np.ndarray, int]:
        self._ready("search")
        return self._unit(queries, fn), check_k(k, self.ntotal, fn)

    @torch.no_grad()
    def reference_search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        r"""Asymmetric distance computation over every code, then a stable sort: what :meth:`search` computes.

        $$s_{r,i} = \sum_{j=1}^{m} T_j[\mathrm{code}_j(x_i), r]$$

        summed in the order $j = 1..m$ as the fast path does, so the scores agree to the bit. Same arguments,
        result and errors as :meth:`search`; holds the whole (N, Q) score matrix.
        """
        q, k = self._search_inputs(queries, k, "PQIndex.reference_search")
        lut, codes = torch.from_numpy(self.lookup_tables(q)), torch.from_numpy(self.codes.astype(np.int64))
        scores = sum(lut[j][codes[j]] for j in range(self.m))  # (N, Q): m look-ups per vector, one per sub-space
        values, indices = torch.sort(scores.T, dim=1, descending=True, stable=True)  # ties to the smaller id
        return values[:, :k].contiguous(), indices[:, :k].contiguous()

    @torch.no_grad()
    def search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        r"""The ``k`` codes of highest approximate score $\sum_j T_j[\mathrm{code}_j(x_i)]$ for each query.

        ``queries (Q, dim)``; returns ``scores (Q, k)`` (descending, float32) and ``indices (Q, k)`` (ties to the
        smaller id): the answer of :meth:`reference_search`. The fast path gathers the look-ups tile by tile
        with the running top-k of the exact search (``mmtutor._search``). Raises ``RuntimeError`` before
        ``train``/``add``; ``TypeError``/``ValueError`` for bad queries or ``k`` outside ``[1, ntotal]``.
        """
        qn, k = self._search_inputs(queries, k, "PQIndex.search")
        n_q = len(qn)
        # look-up tables: lut[j, c, r] = q_r^(j) . codebook_j[c], stored per block of queries
        lut = self.lookup_tables(qn)  # (m, 2^b, Q)
        lut_blocks = [np.ascontiguousarray(lut[:, :, q0:q0 + BLOCK_Q]) for q0 in range(0, n_q, BLOCK_Q)]

        def prepare(s: int, e: int) -> TileFn:
            codes = self.codes[:, s:e].astype(np.intp)  # (m, n_b)
            buf = np.empty((e - s) * BLOCK_Q, np.float32)

            def fill(q0: int, q1: int, out: np.ndarray) -> None:
                table = lut_blocks[q0 // BLOCK_Q]  # (m, 2^b, Q_b)
                tmp = buf[: out.size].reshape(out.shape)
                np.take(table[0], codes[0], axis=0, out=out)  # a gathered row of Q_b scores per vector
                for j in range(1, self.m):
                    np.take(table[j], codes[j], axis=0, out=tmp)
                    out += tmp
            return fill

        values, indices = threaded_topk(n_q, self.ntotal, k, np.float32, prepare)
        return self._as_torch(values, indices)

    def bytes_per_vector(self) -> float:
        """``m`` one-byte codes (at n_bits=8) plus a share of the codebooks."""
        return self.m * self.n_bits / 8 + 4 * self.codebooks.size / max(self.ntotal, 1)
