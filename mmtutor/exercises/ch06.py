r"""Chapter 6's exercises: similarity search.

* exercise 1, :func:`check_safe_cosine` (the warm-up, :func:`~mmtutor.exercises.check_function`):
  ``my_cosine(a, b)``, row-wise cosine similarity that gives 0, not NaN, for a zero row;
* exercise 2, :func:`check_ivf_search` (an index from its parts):
  ``ivf_search(queries, database, centroids, k, n_probe)``, the inverted file's search written from the centroids
  alone: file each vector in its cell, probe, rank;
* exercise 3, :func:`check_pq_scores` (product quantisation's look-up tables): ``pq_scores(queries, codebooks,
  codes)``, the approximate scores $\sum_j T_j[\mathrm{code}_j(x)]$ from the tables $T_j[c] = q^{(j)}\cdot c^{(j)}_c$;
* exercise 4, :func:`check_lsh_tables` (predict, then measure): ``candidate_probability(s, n_bits, n_tables)``,
  the chance that LSH makes a vector at cosine ``s`` a candidate, and ``tables_needed``, the number of tables a
  target recall asks for; after a pass the feedback gives what the package's ``LSHIndex`` really does at that
  setting.

The references, the hidden probes and the messages for typical wrong answers live here, not in the notebook; the
notebook's check cells call ``ch06.check_<what>(answer)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmtutor.exercises import check, check_function, exercise

# --- Exercise 1: cosine similarity that survives a zero row -----------------------------------------------------

NO_CLAMP = "a zero row gives NaN: clamp each norm from below with .clamp_min(eps) before dividing"
PRODUCT_CLAMP = ("you clamp the product of the norms: clamp each norm on its own, max(|a|, eps) * max(|b|, eps) "
                 "(the two differ for rows shorter than eps)")
NO_NORMS = "this is the dot product: divide by the two (clamped) lengths"
EPS = 1e-8


def _cosine_reference(a: Tensor, b: Tensor) -> Tensor:
    r"""$\frac{a\cdot b}{\max(\lVert a\rVert,\epsilon)\max(\lVert b\rVert,\epsilon)}$ row by row (torch's semantics)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=EPS)


def _row_pairs(g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two (n, d) float64 batches of random sizes with zero rows in both and rows shorter than eps in one."""
    n, d = int(torch.randint(6, 20, (1,), generator=g)), int(torch.randint(2, 9, (1,), generator=g))
    a, b = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    a[0], b[1] = 0, 0  # zero rows: similarity 0
    a[2] *= 1e-11  # a row shorter than eps, against a row of normal length
    b[3] *= 1e-3
    a[3] *= 1e-7  # |a| |b| < eps although neither norm is
    return a, b


@exercise(1, tests="the cosine formula with PyTorch's safeguard: each norm clamped at eps, so a zero row gives 0 "
                   "(a warm-up: section 1 shows the formula)",
          wrong_answers={"no clamping": NO_CLAMP, "clamps the product of the norms": PRODUCT_CLAMP,
                         "forgets to divide by the norms": NO_NORMS})
def check_safe_cosine(my_cosine: Any) -> None:
    r"""Exercise 1: ``my_cosine(a, b)`` for ``a, b (n, d)`` returns the ``n`` row-wise cosine similarities
    $\frac{a\cdot b}{\max(\lVert a\rVert,\epsilon)\max(\lVert b\rVert,\epsilon)}$, $\epsilon = 10^{-8}$. Checked
    against ``torch.nn.functional.cosine_similarity`` on five hidden batches of random sizes with zero rows and
    rows shorter than eps."""
    __tracebackhide__ = True
    mistakes = [(NO_CLAMP, lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))),
                (PRODUCT_CLAMP, lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(EPS)),
                (NO_NORMS, lambda a, b: (a * b).sum(-1))]
    check_function("Exercise 1", my_cosine, _cosine_reference, _row_pairs, trials=5, atol=1e-9, rtol=1e-7,
                   mistakes=mistakes,
                   hints=("a zero vector has no direction: the formula divides by 0 there",
                          "clamp each norm from below: a.norm(dim=-1).clamp_min(eps), and the same for b",
                          "then divide the row-wise dot product (a * b).sum(-1) by the product of the clamped norms"))


# --- Exercise 2: an inverted file from its centroids ------------------------------------------------------------

EXACT = "this ranks every database vector (exact search): score only the vectors filed in the probed cells"
FARTHEST = "you probe the cells whose centroids are LEAST similar to the query: probe the most similar ones"
ONE_PROBE = "you search one cell whatever n_probe says: probe the n_probe most similar centroids"
SCORES = "return the indices of the database rows (an integer tensor), not their scores"


def ivf_reference(queries: Tensor, database: Tensor, centroids: Tensor, k: int, n_probe: int,
                  probe_sign: float = 1.0) -> Tensor:
    r"""The inverted file's search from its centroids: indices ``(Q, k)``.

    Every database row is filed in the cell of its most similar centroid, $z_i = \arg\max_l x_i\cdot c_l$; a
    query probes its ``n_probe`` most similar centroids and ranks, by $q\cdot x_i$, only the rows filed there.
    (``probe_sign=-1`` probes the least similar ones instead: a typical mistake.)
    """
    cell = (database @ centroids.T).argmax(1)  # (N,) z_i
    probed = torch.topk(probe_sign * queries @ centroids.T, n_probe, dim=1).indices  # (Q, n_probe)
    filed_there = (cell[None, :, None] == probed[:, None, :]).any(-1)  # (Q, N): row i is in a probed cell
    scores = (queries @ database.T).masked_fill(~filed_there, -torch.inf)  # (Q, N)
    return torch.topk(scores, k, dim=1).indices


def _exact(queries: Tensor, database: Tensor, centroids: Tensor, k: int, n_probe: int) -> Tensor:
    return torch.topk(queries @ database.T, k, dim=1).indices


def _farthest(queries: Tensor, database: Tensor, centroids: Tensor, k: int, n_probe: int) -> Tensor:
    return ivf_reference(queries, database, centroids, k, n_probe, probe_sign=-1.0)


def _one_probe(queries: Tensor, database: Tensor, centroids: Tensor, k: int, n_probe: int) -> Tensor:
    return ivf_reference(queries, database, centroids, k, 1)


def _ivf_inputs(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor, int, int]:
    r"""Unit vectors of random sizes in a few dimensions (so that cell borders matter); the centroids are database
    rows (so no cell is empty), ``k`` at most the smallest cell, ``n_probe`` below the number of cells, and the
    inputs redrawn until the answer differs from exact search."""
    for _ in range(50):
        dim, n_lists = int(torch.randint(3, 7, (1,), generator=g)), int(torch.randint(5, 13, (1,), generator=g))
        n, n_q = int(torch.randint(80, 241, (1,), generator=g)), int(torch.randint(4, 10, (1,), generator=g))
        x = torch.randn(n + n_q, dim, generator=g, dtype=torch.float64)
        x = x / x.norm(dim=1, keepdim=True)
        database, queries = x[:n], x[n:]
        centroids = database[torch.randperm(n, generator=g)[:n_lists]].clone()  # (L, dim) unit rows
        smallest = int(torch.bincount((database @ centroids.T).argmax(1), minlength=n_lists).min())
        k = min(int(torch.randint(2, 8, (1,), generator=g)), smallest)
        n_probe = int(torch.randint(2, max(3, n_lists // 2), (1,), generator=g))
        inputs = queries, database, centroids, k, n_probe
        if not torch.equal(ivf_reference(*inputs), _exact(*inputs)):
            break
    return inputs


@exercise(2, tests="the inverted file's search from given centroids: filing every vector in the cell of its most "
                   "similar centroid, probing a query's n_probe most similar cells, ranking only what is filed there",
          wrong_answers={"ranks the whole database": EXACT, "probes the least similar cells": FARTHEST,
                         "ignores n_probe": ONE_PROBE, "returns scores": SCORES})
def check_ivf_search(ivf_search: Any) -> None:
    r"""Exercise 2: ``ivf_search(queries, database, centroids, k, n_probe)`` with unit rows ``queries (Q, d)``,
    ``database (N, d)``, ``centroids (L, d)`` returns the indices ``(Q, k)`` (int64, best first) of the ``k`` most
    similar database rows among those filed in the query's ``n_probe`` most similar cells. Checked against the
    reference on eight hidden data sets of random sizes (continuous data: no ties), on each of which exact
    search gives another answer."""
    __tracebackhide__ = True
    check_function("Exercise 2", ivf_search, ivf_reference, _ivf_inputs, trials=8, atol=0, rtol=0,
                   mistakes=[(EXACT, _exact), (FARTHEST, _farthest), (ONE_PROBE, _one_probe),
                             (SCORES, lambda *a: torch.topk(a[0] @ a[1].T, a[3], dim=1).values)],
                   hints=("two steps: which cell is each database vector filed in, and which cells does a query probe?",
                          "a vector's cell is the argmax over l of x . c_l; a query probes the n_probe centroids "
                          "with the largest q . c_l (torch.topk)",
                          "for each query, keep the database rows whose cell is among its probed cells (torch.isin), "
                          "score them with q . x and return the original row indices of the k best"))


# --- Exercise 3: product quantisation's look-up tables ----------------------------------------------------------

INTERLEAVED = ("sub-vector j is the j-th block of D/m CONSECUTIVE numbers: split the query with "
               "reshape(Q, m, D // m), not reshape(Q, D // m, m)")
ONE_SUBSPACE = "you use only the first sub-space: the score sums the look-ups of all m sub-spaces"
TRANSPOSED = "the scores should be (Q, N): one row per query, one column per database vector"


def pq_reference(queries: Tensor, codebooks: Tensor, codes: Tensor) -> Tensor:
    r"""$s_{r,i} = \sum_j T_j[\mathrm{code}_j(x_i), r]$ with $T_j[c, r] = q_r^{(j)}\cdot C_j[c]$: scores ``(Q, N)``."""
    m = codebooks.shape[0]
    q = queries.reshape(len(queries), m, -1)  # (Q, m, D/m): sub-vector j is numbers j*D/m .. (j+1)*D/m - 1
    tables = torch.einsum("qjd,jcd->jcq", q, codebooks)  # (m, K, Q): computed once per query
    return sum(tables[j][codes[:, j]] for j in range(m)).T  # (Q, N): m look-ups per database vector


def _interleaved(queries: Tensor, codebooks: Tensor, codes: Tensor) -> Tensor:
    m = codebooks.shape[0]
    q = queries.reshape(len(queries), -1, m).transpose(1, 2)  # the wrong split: every m-th number
    return pq_reference(q.reshape(len(queries), -1), codebooks, codes)


def _pq_inputs(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Random queries, codebooks ``(m, K, D/m)`` and codes ``(N, m)`` of random sizes (float64)."""
    m, sub = int(2 ** torch.randint(1, 4, (1,), generator=g)), int(torch.randint(2, 5, (1,), generator=g))
    n_codes, n, n_q = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((4, 17), (10, 51), (2, 7)))
    queries = torch.randn(n_q, m * sub, generator=g, dtype=torch.float64)
    codebooks = torch.randn(m, n_codes, sub, generator=g, dtype=torch.float64)
    codes = torch.randint(0, n_codes, (n, m), generator=g)
    return queries, codebooks, codes


@exercise(3, tests="product quantisation's asymmetric scores: one look-up table per sub-space and query, "
                   "T_j[c] = q^(j) . C_j[c], then m look-ups summed per database vector",
          wrong_answers={"splits the query into interleaved sub-vectors": INTERLEAVED,
                         "sums one sub-space only": ONE_SUBSPACE, "returns (N, Q)": TRANSPOSED})
def check_pq_scores(pq_scores: Any) -> None:
    r"""Exercise 3: ``pq_scores(queries, codebooks, codes)`` with ``queries (Q, D)``, ``codebooks (m, K, D/m)``
    and ``codes (N, m)`` (int64 in ``[0, K)``) returns the approximate scores ``(Q, N)``,
    $s_{r,i} = \sum_{j} q_r^{(j)}\cdot C_j[\mathrm{code}_j(x_i)]$. Any correct computation passes (tables and
    look-ups, or decoding the vectors first); checked on six hidden inputs of random sizes."""
    __tracebackhide__ = True
    check_function("Exercise 3", pq_scores, pq_reference, _pq_inputs, trials=6, atol=1e-9, rtol=1e-9,
                   mistakes=[(INTERLEAVED, _interleaved),
                             (ONE_SUBSPACE, lambda q, c, z: pq_reference(q[:, :c.shape[2]], c[:1], z[:, :1])),
                             (TRANSPOSED, lambda q, c, z: pq_reference(q, c, z).T)],
                   hints=("cut each query into m sub-vectors of D/m consecutive numbers",
                          "table j holds the dot product of the query's sub-vector j with each of the K centroids "
                          "of codebook j: m tables of K numbers per query",
                          "the score of database vector i adds, over j, the entry of table j at index codes[i, j]"))


# --- Exercise 4: how many LSH tables? ---------------------------------------------------------------------------

COSINE_NOT_ANGLE = ("you used the cosine as the chance of one shared bit: the chance is 1 - theta / pi, with "
                    "theta = arccos(s)")
ONE_TABLE = "this is the chance for one table: with T tables, a candidate needs to share its bucket in ANY of them"
ANGLE_NOT_SAME = "theta / pi is the chance that a bit DIFFERS: the chance that it is the same is 1 - theta / pi"
TOO_FEW = "with that many tables the chance stays below the target: more are needed"
TOO_MANY = "fewer tables already reach the target: the task asks for the smallest number"
TARGET_COSINE, TARGET_BITS, TARGET_P = 0.9, 12, 0.95


def candidate_reference(s: Tensor, n_bits: int, n_tables: int) -> Tensor:
    r"""$P = 1 - \bigl(1 - (1 - \theta/\pi)^{b}\bigr)^{T}$, $\theta = \arccos s$: a vector at cosine ``s`` shares
    the query's bucket (all ``b`` bits) in at least one of ``T`` independent tables."""
    one_bit = 1 - torch.arccos(s) / math.pi
    return 1 - (1 - one_bit**n_bits) ** n_tables


def tables_reference(s: float = TARGET_COSINE, n_bits: int = TARGET_BITS, target: float = TARGET_P) -> int:
    r"""The smallest $T$ with $P \ge$ ``target``, by walking $T = 1, 2, \dots$"""
    n_tables = 1
    while candidate_reference(torch.tensor(s, dtype=torch.float64), n_bits, n_tables) < target:
        n_tables += 1
    return n_tables


def _lsh_inputs(g: torch.Generator) -> tuple[Tensor, int, int]:
    s = torch.rand(int(torch.randint(5, 30, (1,), generator=g)), generator=g, dtype=torch.float64) * 1.98 - 0.99
    return s, int(torch.randint(1, 17, (1,), generator=g)), int(torch.randint(1, 41, (1,), generator=g))


def measured_candidate_rate(s: float, n_bits: int, n_tables: int, n_pairs: int = 2000, dim: int = 64,
                            seed: int = 0) -> float:
    r"""The fraction of ``n_pairs`` seeded (query, vector) pairs at cosine exactly ``s`` for which the package's
    ``LSHIndex(dim, n_tables, n_bits)`` makes the vector a candidate of its query."""
    from mmtutor.ann import LSHIndex

    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(n_pairs, dim, generator=g), dim=1)  # (P, dim)
    r = torch.randn(n_pairs, dim, generator=g)
    r = torch.nn.functional.normalize(r - (r * q).sum(1, keepdim=True) * q, dim=1)  # unit, perpendicular to q
    x = s * q + math.sqrt(1 - s * s) * r  # (P, dim): q . x = s exactly
    index = LSHIndex(dim, n_tables=n_tables, n_bits=n_bits, seed=seed).add(x)
    rows, ids = index.candidates(q.numpy(), n_tables)
    return float(np.isin(np.arange(n_pairs) * n_pairs + np.arange(n_pairs), rows * n_pairs + ids).mean())


@exercise(4, tests="predicting LSH's candidate probability 1 - (1 - (1 - theta/pi)^b)^T from the one-bit "
                   "collision law, and from it the number of tables a target recall needs",
          wrong_answers={"the cosine as the one-bit chance": COSINE_NOT_ANGLE, "one table only": ONE_TABLE,
                         "theta/pi as the chance of the same bit": ANGLE_NOT_SAME,
                         "too few tables": TOO_FEW, "more tables than needed": TOO_MANY},
          answers=lambda: [tables_reference()])
def check_lsh_tables(candidate_probability: Any, tables_needed: Any) -> None:
    r"""Exercise 4: ``candidate_probability(s, n_bits, n_tables)`` (``s`` a float64 tensor of cosines) returns the
    chance, per entry, that a vector at cosine ``s`` with the query shares its bucket in at least one of
    ``n_tables`` tables of ``n_bits`` random-hyperplane bits; checked on six hidden inputs. ``tables_needed``: the
    smallest number of 12-bit tables that make a neighbour at cosine 0.9 a candidate with probability at least
    0.95, compared with the value computed at check time. After a pass, the feedback reports the fraction of
    2,000 such pairs the package's ``LSHIndex`` really makes candidates."""
    __tracebackhide__ = True
    check_function("Exercise 4 (probability)", candidate_probability, candidate_reference, _lsh_inputs, trials=6,
                   atol=1e-9, rtol=1e-7,
                   mistakes=[(COSINE_NOT_ANGLE, lambda s, b, t: 1 - (1 - s**b) ** t),
                             (ONE_TABLE, lambda s, b, t: (1 - torch.arccos(s) / math.pi) ** b),
                             (ANGLE_NOT_SAME, lambda s, b, t: 1 - (1 - (torch.arccos(s) / math.pi) ** b) ** t)],
                   hints=("one random hyperplane separates two vectors at angle theta with probability theta / pi",
                          "a bucket key is n_bits bits: the pair shares it when every bit agrees, independently",
                          "with T tables, the pair is a candidate unless it misses in all of them: 1 - (1 - p)^T"))
    if tables_needed is Ellipsis:
        check("Exercise 4 (tables)", tables_needed, 0)
        return
    answer = tables_needed
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    expected = tables_reference()
    rate = (f"(Measured: the package's LSHIndex with {expected} tables of {TARGET_BITS} bits makes "
            f"{measured_candidate_rate(TARGET_COSINE, TARGET_BITS, expected):.1%} of 2,000 pairs at cosine "
            f"{TARGET_COSINE} candidates.)")
    check("Exercise 4 (tables)", answer, expected, atol=0, rtol=0,
          mistakes=[(TOO_FEW, n) for n in range(1, expected)] + [(TOO_MANY, n) for n in range(expected + 1, 200)],
          hints=("compute candidate_probability(0.9, 12, T) for T = 1, 2, 3, ...",
                 "the smallest T whose probability reaches 0.95 is the answer (or solve 1 - (1 - p)^T >= 0.95 for T)"),
          feedback=rate)
