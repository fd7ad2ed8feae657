"""Chapter 7's metrics: recall@k with one or several right answers against a brute-force ranking, search, prompts.

covers: mmtutor.alignment.metrics
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmtutor.alignment import (
    ensemble_prompts,
    evaluate_retrieval,
    hard_negative_accuracy,
    label_recall_at_k,
    modality_gap,
    recall_at_k,
    target_ranks,
    zero_shot_classify,
)


def brute_force_rank(scores: list[float], right: set[int]) -> int:
    """0-based position of the first right answer when the items are sorted by score, ties by the smaller index."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    return next(pos for pos, j in enumerate(order) if j in right)


def test_recall_at_k_matches_ranking_by_topk_with_ties_to_the_smaller_index() -> None:
    g = torch.Generator().manual_seed(0)
    sim = torch.randint(0, 4, (30, 20), generator=g).float()  # many ties
    targets = torch.randint(0, 20, (30,), generator=g)
    for k in (1, 3, 20):
        expected = sum(
            targets[i].item() in sorted(range(20), key=lambda j, i=i: (-sim[i, j].item(), j))[:k] for i in range(30)
        ) / 30
        assert recall_at_k(sim, k, targets) == pytest.approx(expected)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(sim, 21, targets)


def test_every_vector_finds_itself_first() -> None:
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(1))
    report = evaluate_retrieval(x, x)
    assert report["R@1"] == 1.0 and report["median rank"] == 1.0
    assert recall_at_k(x @ x.T / (x.norm(dim=1)[:, None] * x.norm(dim=1)), 1) == 1.0
    shuffled = evaluate_retrieval(x, x.flip(0))
    assert shuffled["R@1"] < 0.1
    assert evaluate_retrieval(x, x.flip(0), targets=torch.arange(49, -1, -1))["R@1"] == 1.0
    ranks = target_ranks(torch.tensor([[2, 0, 1], [1, 2, 0]]), torch.tensor([0, 0]))
    assert ranks.tolist() == [2, 3]


def test_label_recall_counts_any_item_of_the_right_class() -> None:
    gallery = torch.eye(3).repeat(2, 1)  # (6, 3), items 0..2 and 3..5 are copies
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    queries = torch.eye(3)[[2, 0]]
    assert label_recall_at_k(queries, gallery, torch.tensor([2, 0]), labels, ks=(1,)) == {"R@1": 1.0}
    assert label_recall_at_k(queries, gallery, torch.tensor([1, 1]), labels, ks=(1, 2)) == {"R@1": 0.0, "R@2": 0.0}


def test_prompt_ensembles_zero_shot_hard_negatives_and_the_gap() -> None:
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(4, 3, 8, generator=g)
    c = ensemble_prompts(emb)
    torch.testing.assert_close(c.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(ensemble_prompts(emb[:, :1]), F.normalize(emb[:, 0], dim=1))
    assert zero_shot_classify(3 * c, c).tolist() == [0, 1, 2, 3]
    x = torch.randn(10, 8, generator=g)
    assert hard_negative_accuracy(x, x, x) == 0.5
    assert hard_negative_accuracy(x, x, -x) == 1.0
    assert modality_gap(x, 2 * x) == pytest.approx(0.0, abs=1e-6)
    e = torch.eye(8)[:1]
    assert modality_gap(e, -e) == pytest.approx(2.0)




# ---------------------------------------------------------------------------- several right answers per query


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_with_several_positives_matches_a_brute_force_ranking(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    sim = torch.randint(0, 5, (25, 18), generator=g).float()  # many ties
    positives = torch.rand(25, 18, generator=g) < 0.15
    positives[torch.arange(25), torch.randint(0, 18, (25,), generator=g)] = True  # at least one per row
    ranks = [brute_force_rank(sim[i].tolist(), set(positives[i].nonzero().flatten().tolist())) for i in range(25)]
    for k in (1, 2, 5, 18):
        assert recall_at_k(sim, k, positives=positives) == pytest.approx(sum(r < k for r in ranks) / 25)


def test_one_positive_per_row_is_the_same_as_targets() -> None:
    g = torch.Generator().manual_seed(3)
    sim = torch.randn(12, 20, generator=g)
    targets = torch.randint(0, 20, (12,), generator=g)
    one_hot = F.one_hot(targets, 20).bool()
    for k in (1, 3, 7):
        assert recall_at_k(sim, k, positives=one_hot) == recall_at_k(sim, k, targets)
    q, db = torch.randn(12, 6, generator=g), torch.randn(20, 6, generator=g)
    assert evaluate_retrieval(q, db, positives=one_hot) == evaluate_retrieval(q, db, targets)


def test_counting_one_of_two_true_items_undercounts() -> None:
    # Query 0 has two true items, 3 and 5; item 5 ranks first, item 3 second. Query 1 has one, ranked third.
    sim = torch.tensor([[0.1, 0.2, 0.0, 0.8, 0.3, 0.9], [0.5, 0.9, 0.1, 0.2, 0.8, 0.0]])
    positives = torch.zeros(2, 6, dtype=torch.bool)
    positives[0, [3, 5]] = True
    positives[1, 0] = True
    assert recall_at_k(sim, 1, torch.tensor([3, 0])) == 0.0  # "its" item is second: called a miss
    assert recall_at_k(sim, 1, positives=positives) == 0.5  # a true item is first: a hit
    assert recall_at_k(sim, 3, positives=positives) == 1.0


def test_evaluate_retrieval_with_positives_agrees_with_recall_on_cosines() -> None:
    g = torch.Generator().manual_seed(4)
    q, db = torch.randn(30, 8, generator=g), torch.randn(40, 8, generator=g)
    positives = torch.rand(30, 40, generator=g) < 0.1
    positives[:, 0] |= ~positives.any(dim=1)
    cosines = F.normalize(q, dim=1) @ F.normalize(db, dim=1).T
    report = evaluate_retrieval(q, db, positives=positives, ks=(1, 5))
    for k in (1, 5):
        assert report[f"R@{k}"] == pytest.approx(recall_at_k(cosines, k, positives=positives))
    ranks = [brute_force_rank(cosines[i].tolist(), set(positives[i].nonzero().flatten().tolist())) + 1
             for i in range(30)]
    assert report["median rank"] == float(torch.tensor(ranks).float().median())


def test_positives_in_metrics_are_checked() -> None:
    sim = torch.randn(4, 5)
    with pytest.raises(ValueError, match="not both"):
        recall_at_k(sim, 1, torch.arange(4), positives=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="every row"):
        recall_at_k(sim, 1, positives=torch.zeros(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape \(4, 5\)"):
        evaluate_retrieval(torch.randn(4, 3), torch.randn(5, 3), positives=torch.ones(4, 4, dtype=torch.bool))
