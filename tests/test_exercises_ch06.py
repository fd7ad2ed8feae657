"""Chapter 6's exercise checks: right answers pass (any correct form), typical wrong ones get their message,
stubs say TODO, and no message shows an expected value.

covers: mmtutor.exercises.ch06
"""

from __future__ import annotations

import math

import pytest
import torch

from mmtutor.ann import IVFIndex, PQIndex
from mmtutor.exercises import ExerciseFailed, ch06
from mmtutor.similarity import cosine_similarity, normalize


def test_exercise_1_cosine(capsys):
    ch06.check_safe_cosine(lambda a, b: cosine_similarity(a, b))
    ch06.check_safe_cosine(lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1).clamp_min(1e-8)
                                                           * b.norm(dim=-1).clamp_min(1e-8)))
    assert capsys.readouterr().out.count("PASS Exercise 1") == 2
    for wrong, message in [(lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)), "NaN"),
                           (lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8),
                            "product of the norms"),
                           (lambda a, b: (a * b).sum(-1), "dot product")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch06.check_safe_cosine(wrong)


def _ivf_loop(queries, database, centroids, k, n_probe):
    cell = (database @ centroids.T).argmax(1)
    out = []
    for q in queries:
        probed = torch.argsort(centroids @ q, descending=True)[:n_probe]
        ids = torch.nonzero(torch.isin(cell, probed)).squeeze(1)
        out.append(ids[torch.argsort(database[ids] @ q, descending=True)[:k]])
    return torch.stack(out)


def test_exercise_2_ivf_from_centroids(capsys):
    ch06.check_ivf_search(_ivf_loop)
    ch06.check_ivf_search(ch06.ivf_reference)
    assert capsys.readouterr().out.count("PASS Exercise 2") == 2
    for wrong, message in [(ch06._exact, "exact search"), (ch06._farthest, "LEAST similar"),
                           (ch06._one_probe, "one cell")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch06.check_ivf_search(wrong)


def test_exercise_2_reference_is_the_packages_ivf():
    # with the exercise's centroids put into an IVFIndex, its search gives the reference's answer
    for seed in range(3):
        queries, database, centroids, k, n_probe = ch06._ivf_inputs(torch.Generator().manual_seed(seed))
        ivf = IVFIndex(database.shape[1], len(centroids))
        ivf.centroids, ivf.is_trained = centroids.float(), True
        ivf.add(database.float())
        found = ivf.search(queries.float(), k, n_probe=n_probe)[1]
        assert torch.equal(found, ch06.ivf_reference(queries, database, centroids, k, n_probe))
        assert not torch.equal(found, ch06._exact(queries, database, centroids, k, n_probe))


def test_exercise_3_pq_tables(capsys):
    def decoded(queries, codebooks, codes):
        x = torch.cat([codebooks[j][codes[:, j]] for j in range(codebooks.shape[0])], 1)  # (N, D)
        return queries @ x.T

    ch06.check_pq_scores(decoded)
    assert "PASS Exercise 3" in capsys.readouterr().out
    with pytest.raises(ExerciseFailed, match="CONSECUTIVE"):
        ch06.check_pq_scores(ch06._interleaved)
    with pytest.raises(ExerciseFailed, match=r"\(Q, N\)"):
        ch06.check_pq_scores(lambda q, c, z: ch06.pq_reference(q, c, z).T)


def test_exercise_3_reference_equals_pqindex():
    x = normalize(torch.randn(600, 16, generator=torch.Generator().manual_seed(0)))
    pq = PQIndex(16, m=4, n_bits=4, n_iter=4).train(x).add(x)
    queries = x[:5]
    scores = ch06.pq_reference(queries.double(), torch.from_numpy(pq.codebooks).double(),
                               torch.from_numpy(pq.codes.T.astype("int64")))
    values, indices = pq.reference_search(queries, 3)
    torch.testing.assert_close(scores.gather(1, indices).float(), values, atol=1e-5, rtol=1e-5)


def test_exercise_4_lsh_prediction(capsys):
    def probability(s, n_bits, n_tables):
        return 1 - (1 - (1 - torch.arccos(s) / math.pi) ** n_bits) ** n_tables

    needed = ch06.tables_reference()
    assert probability(torch.tensor(0.9, dtype=torch.float64), 12, needed) >= 0.95
    assert probability(torch.tensor(0.9, dtype=torch.float64), 12, needed - 1) < 0.95
    ch06.check_lsh_tables(probability, needed)
    ch06.check_lsh_tables(probability, float(needed))
    out = capsys.readouterr().out
    assert out.count("PASS Exercise 4") == 4 and "Measured" in out
    with pytest.raises(ExerciseFailed, match="more are needed") as failure:
        ch06.check_lsh_tables(probability, needed - 1)
    assert str(needed) not in str(failure.value).replace(f"Exercise {4}", "")
    with pytest.raises(ExerciseFailed, match="smallest"):
        ch06.check_lsh_tables(probability, needed + 5)
    with pytest.raises(ExerciseFailed, match="ANY"):
        ch06.check_lsh_tables(lambda s, b, t: (1 - torch.arccos(s) / math.pi) ** b, needed)


def test_the_measured_candidate_rate_follows_the_prediction():
    predicted = ch06.candidate_reference(torch.tensor(0.8, dtype=torch.float64), 8, 6).item()
    assert abs(ch06.measured_candidate_rate(0.8, 8, 6) - predicted) < 0.04   # 2,000 pairs: a few points of noise


def test_stubs_say_todo(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise")

    ch06.check_safe_cosine(stub)
    ch06.check_ivf_search(...)
    ch06.check_pq_scores(stub)
    ch06.check_lsh_tables(stub, ...)
    out = capsys.readouterr().out
    assert out.count("TODO Exercise") == 5 and "PASS" not in out
