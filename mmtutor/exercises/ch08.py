r"""Chapter 8's exercises: search, translation, recommendation.

* exercise 1 (from the equation, :func:`~mmtutor.exercises.check_function`): :func:`check_bm25_weight`, BM25's
  weight of a term in a document with Lucene's idf, against the package's
  :func:`~mmtutor.applications.retrieval.bm25_term_weight` on hidden tensors and random $k_1$, $b$;
* exercise 2 (from the derivation): :func:`check_procrustes`, the orthogonal map $W = UV^\top$ from the SVD of
  $X^\top Z$, against :func:`~mmtutor.applications.translation.procrustes` on hidden pairs of random sizes;
* exercise 3 (the field's metric): :func:`check_average_precision`, the average precision of each ranking, against
  :func:`~mmtutor.applications.metrics.average_precision` on hidden 0/1 rankings (rows with nothing relevant too).

The references, the hidden inputs and the messages for typical wrong answers live here, not in the notebook.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mmtutor.applications.metrics import average_precision
from mmtutor.applications.retrieval import bm25_term_weight
from mmtutor.applications.translation import least_squares_map, procrustes
from mmtutor.exercises import check_function, exercise

# --- Exercise 1: BM25's term weight -------------------------------------------------------------------------------

ATIRE_IDF = "your idf is ln(N / df) (ATIRE's); the chapter uses Lucene's, ln(1 + (N - df + 0.5) / (df + 0.5))"
RSJ_IDF = ("your idf is ln((N - df + 0.5) / (df + 0.5)), which turns negative for a term in more than half the "
           "documents: Lucene adds 1 inside the logarithm")
NO_LENGTH = "the document length is missing: the k1 term is scaled by 1 - b + b |d| / avgdl"
NO_K1_PLUS_1 = "the numerator is tf (k1 + 1), not tf: without it the weight's ceiling is idf, not idf (k1 + 1)"


def _bm25_inputs(g: torch.Generator) -> tuple:
    n = int(torch.randint(5, 30, (1,), generator=g))
    n_docs = int(torch.randint(20, 200, (1,), generator=g))
    tf = torch.randint(0, 8, (n,), generator=g).double()
    df = torch.randint(1, n_docs + 1, (n,), generator=g).double()  # some terms in more than half the documents
    doc_len = torch.randint(5, 400, (n,), generator=g).double()
    avg_len = float(torch.randint(30, 150, (1,), generator=g))
    k1, b = 0.5 + 2 * float(torch.rand(1, generator=g)), 0.2 + 0.8 * float(torch.rand(1, generator=g))
    return tf, df, n_docs, doc_len, avg_len, k1, b


def _saturation(tf, doc_len, avg_len, k1, b):
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avg_len))


@exercise(1, tests="BM25's term weight from its equation: Lucene's idf times the saturating, length-normalised "
                   "term frequency, elementwise over tensors",
          wrong_answers={"ATIRE's idf ln(N / df)": ATIRE_IDF, "Robertson-Sparck Jones idf without the 1 +": RSJ_IDF,
                         "no length normalisation": NO_LENGTH, "numerator without (k1 + 1)": NO_K1_PLUS_1})
def check_bm25_weight(my_bm25_weight: Any) -> None:
    r"""Exercise 1: ``my_bm25_weight(tf, df, n_docs, doc_len, avg_len, k1, b)``, the BM25 weight of section 1,
    elementwise. Checked against :func:`~mmtutor.applications.retrieval.bm25_term_weight` on five hidden inputs."""
    __tracebackhide__ = True
    mistakes = [
        (ATIRE_IDF, lambda tf, df, n, dl, al, k1, b: torch.log(n / df) * _saturation(tf, dl, al, k1, b)),
        (RSJ_IDF, lambda tf, df, n, dl, al, k1, b: torch.log((n - df + 0.5) / (df + 0.5))
         * _saturation(tf, dl, al, k1, b)),
        (NO_LENGTH, lambda tf, df, n, dl, al, k1, b: bm25_term_weight(tf, df, n, al, al, k1, b)),
        (NO_K1_PLUS_1, lambda tf, df, n, dl, al, k1, b: bm25_term_weight(tf, df, n, dl, al, k1, b) / (k1 + 1)),
    ]
    check_function("Exercise 1", my_bm25_weight, bm25_term_weight, _bm25_inputs, trials=5, mistakes=mistakes,
                   hints=("two factors: an idf that depends on N and df, and a term-frequency factor that saturates",
                          "idf = log(1 + (N - df + 0.5) / (df + 0.5)); the tf factor is tf (k1 + 1) / (tf + k1 L)",
                          "L = 1 - b + b * doc_len / avg_len; everything is elementwise, no loops needed"),
                   feedback="(With b = 0 the length is ignored; with k1 = 0 the weight is the idf alone, however "
                            "often the term occurs.)")


# --- Exercise 2: orthogonal Procrustes ----------------------------------------------------------------------------

LEAST_SQUARES = "that is the least-squares map X^+ Z: it fits better but is not orthogonal (W^T W != I)"
TRANSPOSED = "you returned the transpose (or the SVD of Z^T X): W maps rows of X onto Z, so W = U V^T of X^T Z"
WITH_SIGMA = "keep U and V^T only: U S V^T is X^T Z itself, and it is not orthogonal"


def _procrustes_inputs(g: torch.Generator) -> tuple[Tensor, Tensor]:
    d = int(torch.randint(2, 9, (1,), generator=g))
    n = d + int(torch.randint(3, 30, (1,), generator=g))
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))  # a hidden rotation or reflection
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    return X, X @ Q + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)


def _with_sigma(X: Tensor, Z: Tensor) -> Tensor:
    U, S, Vh = torch.linalg.svd(X.T @ Z)
    return U @ torch.diag(S) @ Vh


@exercise(2, tests="the orthogonal Procrustes solution: the SVD of X^T Z = U S V^T gives the orthogonal W = U V^T "
                   "that maps X closest to Z",
          wrong_answers={"the least-squares map": LEAST_SQUARES, "the transpose": TRANSPOSED,
                         "U S V^T": WITH_SIGMA})
def check_procrustes(my_procrustes: Any) -> None:
    r"""Exercise 2: ``my_procrustes(X, Z)`` for ``X, Z (n, d)`` returns the orthogonal ``W (d, d)`` minimising
    $\lVert XW - Z\rVert_F$. Checked against :func:`~mmtutor.applications.translation.procrustes` on five hidden
    noisy rotations of random sizes."""
    __tracebackhide__ = True
    check_function("Exercise 2", my_procrustes, procrustes, _procrustes_inputs, trials=5, atol=1e-8, rtol=1e-6,
                   mistakes=[(LEAST_SQUARES, least_squares_map), (TRANSPOSED, lambda X, Z: procrustes(X, Z).T),
                             (WITH_SIGMA, _with_sigma)],
                   hints=("section 2's derivation: maximise tr(W^T X^T Z) over orthogonal W",
                          "take the SVD of the (d, d) matrix X.T @ Z: torch.linalg.svd returns U, S and V^T",
                          "W = U @ Vh; the singular values are not used"),
                   feedback="(Check it yourself: W.T @ W is the identity, so cosines survive the map.)")


# --- Exercise 3: average precision --------------------------------------------------------------------------------

ALL_RANKS = "you averaged P@i over every rank: average it over the ranks where a relevant item sits"
OVER_K = "you divided by the list length K: divide by the number of relevant items R"
NAN_ROW = "a ranking with no relevant item gives NaN (0 / 0): its average precision is 0"
FINAL_PRECISION = "that is the precision of the whole list, P@K: average precision rewards relevant items early"


def _ap_inputs(g: torch.Generator) -> tuple[Tensor]:
    q, k = int(torch.randint(3, 15, (1,), generator=g)), int(torch.randint(5, 40, (1,), generator=g))
    rel = (torch.rand(q, k, generator=g) < torch.rand(q, 1, generator=g)).long()
    rel[0] = 0  # a query with nothing relevant
    return (rel,)


def _ranks(rel: Tensor) -> Tensor:
    return torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)


@exercise(3, tests="average precision of 0/1 rankings: the mean of P@i over the ranks of the relevant items, "
                   "0 for a ranking without any",
          wrong_answers={"P@i averaged over every rank": ALL_RANKS, "divided by K": OVER_K,
                         "NaN for an empty row": NAN_ROW, "P@K": FINAL_PRECISION})
def check_average_precision(my_average_precision: Any) -> None:
    r"""Exercise 3: ``my_average_precision(rel)`` for a 0/1 ``rel (Q, K)`` returns ``(Q,)`` float64, each row's
    average precision (every relevant item is in the list). Checked against
    :func:`~mmtutor.applications.metrics.average_precision` on three hidden batches."""
    __tracebackhide__ = True
    mistakes = [
        (NAN_ROW, lambda rel: ((rel.double().cumsum(1) / _ranks(rel)) * rel).sum(1) / rel.sum(1)),
        (ALL_RANKS, lambda rel: (rel.double().cumsum(1) / _ranks(rel)).mean(1)),
        (OVER_K, lambda rel: ((rel.double().cumsum(1) / _ranks(rel)) * rel).sum(1) / rel.shape[1]),
        (FINAL_PRECISION, lambda rel: rel.double().mean(1)),
    ]
    check_function("Exercise 3", my_average_precision, average_precision, _ap_inputs, mistakes=mistakes,
                   hints=("P@i = (relevant items among the first i) / i: a cumulative sum divided by the ranks",
                          "keep P@i only where rel_i = 1, add them up, divide by the relevant items of the row",
                          "a row with no relevant item must give 0, not 0 / 0"))
