"""Chapter 8's retrieval pieces and metrics against hand computations, scikit-learn and gensim.

covers: mmtutor.applications.metrics, mmtutor.applications.retrieval
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import average_precision_score, ndcg_score

from mmtutor.applications.metrics import (
    average_precision,
    bootstrap_ci,
    hit_rate,
    ndcg_at_k,
    paired_bootstrap_ci,
    precision_at_k,
    relevance,
    retrieval_recall,
)
from mmtutor.applications.retrieval import (
    BM25,
    TfIdf,
    bm25_term_weight,
    drop_seen,
    mean_word_vectors,
    pairwise_spearman,
)

DOCS = [["the", "cat", "sat", "on", "the", "mat"],
        ["the", "dog", "sat"],
        ["a", "cat", "and", "a", "dog", "and", "a", "cat"],
        ["space", "shuttle", "launch"]]


# ----------------------------------------------------------------------------- metrics


def test_average_precision_by_hand():
    # relevant at ranks 1, 3 and 6 of 6, three relevant in all: (1/1 + 2/3 + 3/6) / 3
    rel = torch.tensor([[1, 0, 1, 0, 0, 1]])
    assert average_precision(rel).item() == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    # the same top 3 when 4 items are relevant in the collection: the missing ones count as 0
    assert average_precision(rel[:, :3], torch.tensor([4])).item() == pytest.approx((1 + 2 / 3) / 4)
    assert average_precision(torch.zeros(1, 5)).item() == 0.0


def test_average_precision_equals_scikit_learn():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        y = torch.randint(0, 2, (30,), generator=g)
        y[0] = 1
        score = torch.rand(30, generator=g, dtype=torch.float64)  # distinct scores: no ties
        order = score.argsort(descending=True)
        ours = average_precision(y[order][None]).item()
        assert ours == pytest.approx(average_precision_score(y.numpy(), score.numpy()))


def test_ndcg_by_hand_and_against_scikit_learn():
    gains = torch.tensor([[3.0, 2.0, 3.0, 0.0, 1.0, 2.0]])
    dcg3 = 3 + 2 / math.log2(3) + 3 / math.log2(4)
    ideal3 = 3 + 3 / math.log2(3) + 2 / math.log2(4)
    assert ndcg_at_k(gains, 3).item() == pytest.approx(dcg3 / ideal3)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 4, (8, 25), generator=g).double()
    s = torch.rand(8, 25, generator=g, dtype=torch.float64)
    ranked = y.gather(1, s.argsort(dim=1, descending=True))
    for k in (1, 5, 10, 25):
        ours = ndcg_at_k(ranked, k).mean().item()
        assert ours == pytest.approx(ndcg_score(y.numpy(), s.numpy(), k=k))


def test_ndcg_of_a_truncated_list_uses_the_ideal_gains():
    full = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0]])
    top2 = full[:, :2]
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(top2, 2, ideal_gains=full).item() == pytest.approx(expected)
    assert ndcg_at_k(torch.zeros(2, 4), 3).tolist() == [0.0, 0.0]


def test_recall_hit_rate_precision_by_hand():
    rel = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    n = torch.tensor([4, 1])
    assert retrieval_recall(rel, 3, n).tolist() == [0.25, 0.0]
    assert retrieval_recall(rel, 5, n).tolist() == [0.5, 1.0]
    assert hit_rate(rel, 3).tolist() == [1.0, 0.0]
    assert precision_at_k(rel, 4).tolist() == [0.5, 0.0]
    with pytest.raises(ValueError, match="k=6"):
        precision_at_k(rel, 6)


def test_relevance_from_labels_never_counts_missing_results():
    indices = torch.tensor([[2, 0, -1], [1, 3, 0]])
    rel = relevance(indices, torch.tensor([1, 0]), torch.tensor([1, 0, 1, 0]))
    assert rel.tolist() == [[True, True, False], [True, True, False]]


def test_bootstrap_interval_holds_the_mean_and_is_seeded():
    v = torch.tensor([0.0, 1.0] * 50)
    mean, low, high = bootstrap_ci(v, seed=3)
    assert mean == 0.5 and low < 0.5 < high and high - low < 0.3
    assert bootstrap_ci(v, seed=3) == (mean, low, high)
    same = paired_bootstrap_ci(v, v)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        bootstrap_ci(torch.zeros(0))
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_ci(v, v[:3])


# ----------------------------------------------------------------------------- TF-IDF and BM25


def test_tfidf_equals_scikit_learn():
    ours = TfIdf().fit(DOCS).transform(DOCS)
    vectorizer = TfidfVectorizer(analyzer=lambda d: d)  # the same tokens, scikit-learn's default weighting
    theirs = vectorizer.fit_transform(DOCS).toarray()
    order = [list(vectorizer.get_feature_names_out()).index(t) for t in TfIdf().fit(DOCS).terms]
    np.testing.assert_allclose(ours.numpy(), theirs[:, order], rtol=1e-6, atol=1e-7)


def test_tfidf_by_hand():
    model = TfIdf().fit(DOCS)
    # "cat" is in 2 of 4 documents: idf = ln(5 / 3) + 1; "mat" in 1: ln(5 / 2) + 1
    assert model.idf[model.index["cat"]].item() == pytest.approx(math.log(5 / 3) + 1)
    x = model.transform([["cat", "mat", "mat", "unknown"]])
    raw = torch.tensor([math.log(5 / 3) + 1, 2 * (math.log(5 / 2) + 1)])
    expected = raw / raw.norm()
    assert x[0, model.index["cat"]].item() == pytest.approx(expected[0].item(), rel=1e-6)
    assert x[0, model.index["mat"]].item() == pytest.approx(expected[1].item(), rel=1e-6)
    assert torch.count_nonzero(x) == 2
    with pytest.raises(RuntimeError, match="fit"):
        TfIdf().transform(DOCS)
    with pytest.raises(TypeError, match="tokenize"):
        TfIdf().fit(["a string, not tokens"])


def test_bm25_term_weight_by_hand():
    # tf 2 in a document of 8 tokens, average 4.25, N = 4, df = 2, k1 = 1.5, b = 0.75
    idf = math.log(1 + (4 - 2 + 0.5) / (2 + 0.5))
    tf_part = 2 * 2.5 / (2 + 1.5 * (1 - 0.75 + 0.75 * 8 / 4.25))
    w = bm25_term_weight(torch.tensor(2.0), torch.tensor(2.0), 4, torch.tensor(8.0), 4.25)
    assert w.item() == pytest.approx(idf * tf_part)
    # saturation: the weight grows with tf but stays below idf * (k1 + 1)
    tfs = torch.arange(1.0, 200.0)
    ws = bm25_term_weight(tfs, torch.tensor(2.0), 4, torch.tensor(8.0), 4.25)
    assert (ws.diff() > 0).all() and ws.max() < idf * 2.5
    # b = 0: the document's length no longer matters
    short, long = (bm25_term_weight(torch.tensor(1.0), torch.tensor(1.0), 4, torch.tensor(n), 4.0, b=0.0)
                   for n in (2.0, 40.0))
    assert short.item() == pytest.approx(long.item())


def test_bm25_scores_by_hand():
    index = BM25(DOCS)
    s = index.scores(["cat", "dog"])
    n, avg = 4, sum(map(len, DOCS)) / 4

    def w(tf, df, dl):
        return math.log(1 + (n - df + 0.5) / (df + 0.5)) * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * dl / avg))

    expected = [w(1, 2, 6), w(1, 2, 3), w(2, 2, 8) + w(1, 2, 8), 0.0]
    assert s.tolist() == pytest.approx(expected)
    assert index.scores(["zebra"]).tolist() == [0.0] * 4
    twice = index.score_matrix([["cat"], ["cat", "cat"]])[1]
    assert twice.tolist() == pytest.approx((2 * index.scores(["cat"])).tolist())


def test_bm25_atire_equals_gensim():
    from gensim.corpora import Dictionary
    from gensim.models import AtireBM25Model

    dictionary = Dictionary(DOCS)
    model = AtireBM25Model(dictionary=dictionary)
    ours = BM25(DOCS, idf="atire")
    for d, doc in enumerate(DOCS):
        weights = dict(model[dictionary.doc2bow(doc)])
        for term in set(doc):
            assert ours.term_weights(term)[d].item() == pytest.approx(weights[dictionary.token2id[term]])


def test_bm25_checks_its_inputs():
    with pytest.raises(ValueError, match="idf"):
        BM25(DOCS, idf="okapi")
    with pytest.raises(ValueError, match="b must lie"):
        BM25(DOCS, b=1.5)
    with pytest.raises(TypeError, match="tokenize"):
        BM25(DOCS).scores("cat dog")


# ----------------------------------------------------------------------------- vectors, agreement, seen items


def test_mean_word_vectors_and_coverage():
    E = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    stoi = {"a": 0, "b": 1, "c": 2}
    v, cov = mean_word_vectors([["a", "b", "x"], ["x"], ["c"]], E, stoi)
    assert v.tolist() == [[0.5, 1.0], [0.0, 0.0], [4.0, 4.0]]
    assert cov.tolist() == pytest.approx([2 / 3, 0.0, 1.0])


def test_pairwise_spearman_uses_the_upper_triangle_only():
    human = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    same_order = torch.tensor([[9.0, 3.0, 1.0], [3.0, -5.0, 2.0], [1.0, 2.0, 7.0]])  # diagonal is nonsense
    assert pairwise_spearman(same_order, human) == pytest.approx(1.0)
    assert pairwise_spearman(-same_order, human) == pytest.approx(-1.0)


def test_drop_seen_keeps_the_order_of_the_rest():
    indices = torch.tensor([[0, 3, 1, 2], [2, 1, 0, 3]])
    seen = torch.eye(4, dtype=torch.bool)[:2]
    assert drop_seen(indices, seen, 3).tolist() == [[3, 1, 2], [2, 0, 3]]
    with pytest.raises(ValueError, match="fewer than k"):
        drop_seen(indices, seen, 4)
