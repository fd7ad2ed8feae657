"""Chapter 8's exercise checks: right answers pass (any correct form), typical wrong ones get their message,
stubs say TODO, and no message shows an expected value.

covers: mmtutor.exercises.ch08
"""

from __future__ import annotations

import math

import pytest
import torch

from mmtutor.exercises import ExerciseFailed, ch08


def _bm25_loop(tf, df, n_docs, doc_len, avg_len, k1, b):
    out = []
    for t, d, dl in zip(tf.tolist(), df.tolist(), doc_len.tolist(), strict=True):
        idf = math.log(1 + (n_docs - d + 0.5) / (d + 0.5))
        out.append(idf * t * (k1 + 1) / (t + k1 * (1 - b + b * dl / avg_len)))
    return torch.tensor(out, dtype=torch.float64)


def test_check_bm25_weight(capsys):
    ch08.check_bm25_weight(_bm25_loop)
    assert "PASS Exercise 1" in capsys.readouterr().out
    for wrong, message in [
        (lambda tf, df, n, dl, al, k1, b: torch.log(n / df) * ch08._saturation(tf, dl, al, k1, b), "ATIRE"),
        (lambda tf, df, n, dl, al, k1, b: torch.log((n - df + 0.5) / (df + 0.5)) * ch08._saturation(tf, dl, al, k1, b),
         "negative"),
        (lambda tf, df, n, dl, al, k1, b: _bm25_loop(tf, df, n, torch.full_like(dl, al), al, k1, b), "length"),
        (lambda tf, df, n, dl, al, k1, b: _bm25_loop(tf, df, n, dl, al, k1, b) / (k1 + 1), "ceiling"),
    ]:
        with pytest.raises(ExerciseFailed, match=message):
            ch08.check_bm25_weight(wrong)


def test_check_bm25_weight_stub(capsys):
    ch08.check_bm25_weight(...)
    assert "TODO Exercise 1" in capsys.readouterr().out


def _procrustes_by_polar(X, Z):
    # the orthogonal polar factor of X^T Z, from an eigendecomposition instead of an SVD
    M = X.T @ Z
    values, vectors = torch.linalg.eigh(M.T @ M)
    return M @ vectors @ torch.diag(values.rsqrt()) @ vectors.T


def test_check_procrustes(capsys):
    ch08.check_procrustes(_procrustes_by_polar)
    assert "PASS Exercise 2" in capsys.readouterr().out
    for wrong, message in [(lambda X, Z: torch.linalg.pinv(X) @ Z, "least-squares"),
                           (lambda X, Z: _procrustes_by_polar(Z, X), "transpose"),
                           (lambda X, Z: X.T @ Z, "U S V")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch08.check_procrustes(wrong)


def test_procrustes_inputs_are_noisy_rotations():
    for seed in range(5):
        X, Z = ch08._procrustes_inputs(torch.Generator().manual_seed(seed))
        assert X.shape == Z.shape and X.shape[0] > X.shape[1]
        W = ch08.procrustes(X, Z)
        assert torch.allclose(W.T @ W, torch.eye(X.shape[1], dtype=torch.float64), atol=1e-10)


def _ap_loop(rel):
    out = []
    for row in rel.tolist():
        hits, total = 0, 0.0
        for i, r in enumerate(row, 1):
            if r:
                hits += 1
                total += hits / i
        out.append(total / hits if hits else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def test_check_average_precision(capsys):
    ch08.check_average_precision(_ap_loop)
    assert "PASS Exercise 3" in capsys.readouterr().out
    ranks = lambda rel: torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)  # noqa: E731
    for wrong, message in [(lambda rel: ((rel.cumsum(1) / ranks(rel)) * rel).sum(1) / rel.sum(1), "NaN"),
                           (lambda rel: (rel.cumsum(1) / ranks(rel)).mean(1), "every rank"),
                           (lambda rel: ((rel.cumsum(1) / ranks(rel)) * rel).sum(1) / rel.shape[1], "list length"),
                           (lambda rel: rel.double().mean(1), "P@K")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch08.check_average_precision(wrong)


def test_average_precision_matches_scikit_learn():
    from sklearn.metrics import average_precision_score

    (rel,) = ch08._ap_inputs(torch.Generator().manual_seed(1))
    for row, ap in zip(rel[1:], _ap_loop(rel[1:]), strict=True):
        if row.any():  # scores falling with the rank: scikit-learn's AP of the ranking
            scores = -torch.arange(len(row), dtype=torch.float64)
            assert ap.item() == pytest.approx(average_precision_score(row.numpy(), scores.numpy()))
