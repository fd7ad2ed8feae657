"""Chapter 1: the embedding lookup, the pieces of skip-gram with negative sampling, their training and evaluation.

covers: mmtutor.embedding, mmtutor.word2vec, mmtutor.data.text, mmtutor.data.kinds, mmtutor.data.pretrained
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

import mmtutor
from mmtutor.data.kinds import WORD_KINDS, make_kinds_corpus
from mmtutor.data.pretrained import load_minilm_token_embeddings
from mmtutor.data.text import UNK, Vocabulary, load_lee_corpus, load_word_pairs, tokenize
from mmtutor.embedding import (
    Embedding,
    SkipGram,
    context_pairs,
    keep_probability,
    noise_distribution,
    one_hot_lookup,
    sgns_loss,
    subsample,
    unigram_table,
)
from mmtutor.word2vec import (
    SGNSConfig,
    analogy,
    evaluate_word_pairs,
    most_similar,
    rank,
    sgns_batches,
    spearman,
    train_sgns,
)


# ----------------------------------------------------------------------------------------------------- lookup
@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 0)])
def test_lookup_equals_one_hot_product_and_nn_embedding(shape):
    torch.manual_seed(0)
    emb = Embedding(7, 4)
    ids = torch.randint(0, 7, shape)
    reference = nn.Embedding.from_pretrained(emb.weight.detach())
    out = emb(ids)
    assert out.shape == (*shape, 4)
    torch.testing.assert_close(out, emb.weight[ids])
    torch.testing.assert_close(out, reference(ids))
    torch.testing.assert_close(out, one_hot_lookup(ids, emb.weight), rtol=0, atol=0)
    assert mmtutor.Embedding is Embedding


def test_lookup_gradient_equals_one_hot_gradient():
    torch.manual_seed(0)
    emb = Embedding(6, 3)
    ids = torch.tensor([[0, 2, 2], [5, 0, 1]])
    upstream = torch.randn(2, 3, 3)
    (emb(ids) * upstream).sum().backward()
    W = emb.weight.detach().clone().requires_grad_()
    (F.one_hot(ids, 6).float() @ W * upstream).sum().backward()
    torch.testing.assert_close(emb.weight.grad, W.grad)
    assert torch.equal(emb.weight.grad[[3, 4]], torch.zeros(2, 3))  # rows not looked up get no gradient


@pytest.mark.parametrize("ids, value", [(torch.tensor([1, 7]), "7"), (torch.tensor([-1, 2]), "-1"),
                                        (torch.tensor([[0, 100]]), "100")])
def test_out_of_range_ids_name_the_value_and_the_vocabulary_size(ids, value):
    with pytest.raises((ValueError, IndexError), match=rf"(?s)\b7\b.*{value}|{value}.*\b7\b"):
        Embedding(7, 2)(ids)


@pytest.mark.parametrize("ids", [torch.tensor([1.0, 2.0]), torch.tensor([True, False]), torch.tensor([1 + 0j])])
def test_non_integer_ids_are_refused(ids):
    with pytest.raises(ValueError, match="integer dtype.*size 7"):
        Embedding(7, 2)(ids)


def test_bad_embedding_arguments():
    with pytest.raises(TypeError):
        Embedding(7, 2)([1, 2])
    for args in [(0, 2), (3, 0), (2.5, 2), (True, 2)]:
        with pytest.raises(ValueError):
            Embedding(*args)
    with pytest.raises(ValueError):
        one_hot_lookup(torch.tensor([0]), torch.zeros(3))


def test_from_pretrained_copies_and_freezes():
    table = torch.randn(5, 3)
    emb = Embedding.from_pretrained(table)
    assert torch.equal(emb(torch.tensor([4])), table[[4]]) and not emb.weight.requires_grad
    table.zero_()
    assert emb.weight.abs().sum() > 0  # a copy, not a view
    assert Embedding.from_pretrained(torch.randn(2, 2), freeze=False).weight.requires_grad
    state = torch.get_rng_state()
    Embedding.from_pretrained(torch.zeros(1000, 8))
    assert torch.equal(torch.get_rng_state(), state)  # no random table is drawn only to be thrown away


# ------------------------------------------------------------------------------------------- text, vocabulary
def test_tokenize():
    assert tokenize("The cat's 2 hats!  Don't-stop") == ["the", "cat's", "hats", "don't", "stop"]
    assert tokenize("") == [] and tokenize("42 ...") == []
    with pytest.raises(TypeError):
        tokenize(["a"])


def test_vocabulary_min_count_unknown_and_order():
    sentences = [["b", "a", "c", "a"], ["b", "a", "d"]]
    vocab = Vocabulary.build(sentences, min_count=2)
    assert vocab.itos == [UNK, "a", "b"]  # by count, then alphabetically; <unk> is id 0
    assert vocab.counts.tolist() == [2, 3, 2]  # <unk> counts the dropped tokens (c, d)
    assert vocab.encode(["a", "zebra", "b"]).tolist() == [1, 0, 2]
    assert vocab.encode(["a", "zebra"], drop_unknown=True).tolist() == [1]
    assert vocab.decode(torch.tensor([2, 0])) == ["b", UNK]
    assert "a" in vocab and "c" not in vocab and UNK not in vocab and len(vocab) == 3
    assert Vocabulary.build(sentences, min_count=1).itos == [UNK, "a", "b", "c", "d"]
    assert Vocabulary.build(sentences, min_count=4).itos == [UNK]


def test_vocabulary_edge_cases():
    empty = Vocabulary.build([])
    assert empty.itos == [UNK] and empty.encode([]).dtype == torch.long and empty.encode(["x"]).tolist() == [0]
    assert Vocabulary.build([[], []]).itos == [UNK]
    vocab = Vocabulary.build([["x"]])
    with pytest.raises(ValueError, match=r"\[0, 2\).*5"):
        vocab.decode([5])
    with pytest.raises(ValueError):
        Vocabulary.build([["x"]], min_count=0)
    with pytest.raises(TypeError):
        Vocabulary.build("some text")
    with pytest.raises(TypeError):
        Vocabulary.build(["some text"])
    with pytest.raises(TypeError):
        vocab.encode("x")
    with pytest.raises(ValueError):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError):
        Vocabulary([UNK])


def test_real_text_and_judgements_load_offline():
    lee = load_lee_corpus()
    assert len(lee) == 300 and sum(map(len, lee)) == 59_576  # the count the docstring and chapter 1 quote
    wordsim, simlex = load_word_pairs("wordsim353"), load_word_pairs("simlex999")
    assert len(wordsim) == 353 and len(simlex) == 999
    assert ("tiger", "cat", 7.35) in wordsim and all(0 <= s <= 10 for _, _, s in wordsim + simlex)
    with pytest.raises(ValueError, match="wordsim353"):
        load_word_pairs("men")


def test_kinds_corpus_is_seeded_and_labelled():
    sentences, kind_of = make_kinds_corpus(50, seed=3)
    assert (sentences, kind_of) == make_kinds_corpus(50, seed=3) and sentences != make_kinds_corpus(50, seed=4)[0]
    assert set(kind_of) == {w for words in WORD_KINDS.values() for w in words}
    assert all(isinstance(w, str) for s in sentences for w in s) and len(sentences) == 50
    with pytest.raises(ValueError):
        make_kinds_corpus(0)


# -------------------------------------------------------------------------------------------- SGNS pieces
def _brute_force_pairs(sentences, window):
    return sorted((s[i], s[j]) for s in sentences for i in range(len(s)) for j in range(len(s))
                  if 0 < abs(i - j) <= window)


def test_context_pairs_full_window_match_brute_force_and_stay_in_sentences():
    sentences = [torch.tensor([1, 2, 3, 4, 5]), torch.tensor([6]), torch.tensor([], dtype=torch.long),
                 torch.tensor([7, 8, 9])]
    for window in (1, 2, 10):
        c, o = context_pairs(sentences, window)
        assert sorted(zip(c.tolist(), o.tolist(), strict=True)) == _brute_force_pairs(
            [s.tolist() for s in sentences], window)
    c, o = context_pairs([], 2)
    assert c.numel() == 0 and o.numel() == 0
    with pytest.raises(ValueError):
        context_pairs(sentences, 0)
    with pytest.raises(ValueError, match="list"):
        context_pairs([[1, 2, 3]], 1)


def test_context_pairs_random_window_favours_near_words():
    positions = torch.arange(20_000)
    c, o = context_pairs([positions], 4, torch.Generator().manual_seed(0))
    assert set((o - c).abs().tolist()) <= {1, 2, 3, 4}
    share = torch.bincount((o - c).abs(), minlength=5)[1:].double() / (2 * len(positions))
    torch.testing.assert_close(share, torch.tensor([1.0, 0.75, 0.5, 0.25], dtype=torch.float64), atol=0.02, rtol=0)


def test_noise_distribution_and_table():
    counts = torch.tensor([0, 100, 10, 1])
    p = noise_distribution(counts)
    expected = torch.tensor([0, 100**0.75, 10**0.75, 1.0]) / (100**0.75 + 10**0.75 + 1)
    torch.testing.assert_close(p, expected)
    assert p[1] < counts[1] / counts.sum() and p[3] > counts[3] / counts.sum()  # flatter than the unigram
    table = unigram_table(p, size=100_000)
    assert len(table) == 100_000 and 0 not in table.tolist()
    torch.testing.assert_close(torch.bincount(table, minlength=4) / 100_000, p, atol=1e-4, rtol=0)
    for bad in (torch.tensor([0, 0]), torch.tensor([-1, 2]), torch.zeros(0)):
        with pytest.raises(ValueError):
            noise_distribution(bad)
    with pytest.raises(ValueError, match="power"):
        noise_distribution(counts, power=-1.0)
    uniform = noise_distribution(counts, power=0.0)  # uniform over the words that occur; count 0 still never drawn
    torch.testing.assert_close(uniform, torch.tensor([0.0, 1 / 3, 1 / 3, 1 / 3]))
    for bad in (torch.zeros(3), torch.tensor([-0.5, 1.0])):
        with pytest.raises(ValueError, match="probabilities"):
            unigram_table(bad)
    with pytest.raises(ValueError, match="size"):
        unigram_table(p, size=0)


def test_keep_probability_and_subsample():
    counts = torch.tensor([900, 90, 9, 1])
    t = 0.01
    f = counts.double() / 1000
    expected = torch.clamp(((f / t).sqrt() + 1) * t / f, max=1).float()
    torch.testing.assert_close(keep_probability(counts, t), expected)
    assert keep_probability(counts, t)[-1] == 1 and (keep_probability(counts, t).diff() >= 0).all()
    assert torch.equal(keep_probability(counts, 0.0), torch.ones(4))
    g = torch.Generator().manual_seed(0)
    kept = subsample([torch.zeros(20_000, dtype=torch.long)], keep_probability(counts, t), g)[0]
    assert abs(len(kept) / 20_000 - expected[0].item()) < 0.01
    with pytest.raises(ValueError):
        keep_probability(counts, -1.0)
    with pytest.raises(ValueError, match="positive total"):
        keep_probability(torch.zeros(3), 1e-3)
    keep = keep_probability(counts, t)
    with pytest.raises(ValueError, match=r"\[0, 4\).*7"):
        subsample([torch.tensor([1, 7])], keep)
    with pytest.raises(ValueError, match="integer dtype"):
        subsample([torch.tensor([1.0])], keep)
    with pytest.raises(ValueError, match="keep"):
        subsample([torch.tensor([1])], torch.tensor([1, 1]))


def test_subsampling_and_noise_match_gensim():
    """Our keep probabilities and noise distribution against gensim's own tables on the Lee corpus."""
    from gensim.models import Word2Vec

    sentences = load_lee_corpus()
    model = Word2Vec(vector_size=8, min_count=3, sample=1e-3, negative=5, sg=1, workers=1, seed=0)
    model.build_vocab(sentences)  # counts, sample_int and cum_table; no training
    words = model.wv.index_to_key
    counts = torch.tensor([model.wv.get_vecattr(w, "count") for w in words])
    gensim_keep = torch.tensor([model.wv.get_vecattr(w, "sample_int") / (2**32 - 1) for w in words],
                               dtype=torch.float64)
    torch.testing.assert_close(keep_probability(counts, 1e-3).double(), gensim_keep, atol=1e-6, rtol=0)
    assert (gensim_keep < 1).sum() > 10  # the comparison covers words that are subsampled
    cum = torch.tensor(model.cum_table.astype("int64"))
    gensim_noise = torch.diff(cum, prepend=torch.zeros(1, dtype=torch.long)).double() / cum[-1]
    torch.testing.assert_close(noise_distribution(counts, 0.75).double(), gensim_noise, atol=1e-8, rtol=1e-5)


def test_sgns_loss_by_hand():
    v = torch.tensor([[1.0, 2.0]])
    u_o = torch.tensor([[0.5, -0.5]])
    u_neg = torch.tensor([[[1.0, 0.0], [0.0, -1.0]]])
    # scores: positive 0.5 - 1.0 = -0.5; negatives 1.0 and -2.0
    log_sigmoid = lambda x: -math.log1p(math.exp(-x))  # noqa: E731
    by_hand = -log_sigmoid(-0.5) - log_sigmoid(-1.0) - log_sigmoid(2.0)
    assert math.isclose(sgns_loss(v, u_o, u_neg).item(), by_hand, rel_tol=1e-6)
    logits = torch.tensor([-0.5, 1.0, -2.0])
    bce = F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0, 0.0]), reduction="sum")
    assert math.isclose(by_hand, bce.item(), rel_tol=1e-6)


def test_sgns_loss_reductions_and_extreme_scores():
    g = torch.Generator().manual_seed(0)
    v, u_o, u_neg = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 5, 3, generator=g)
    per_pair = sgns_loss(v, u_o, u_neg, reduction="none")
    assert per_pair.shape == (4,) and (per_pair > 0).all()
    torch.testing.assert_close(sgns_loss(v, u_o, u_neg), per_pair.mean())
    torch.testing.assert_close(sgns_loss(v, u_o, u_neg, reduction="sum"), per_pair.sum())
    huge = sgns_loss(100 * v, 100 * u_o, 100 * u_neg)  # scores of +-1e4: no overflow, no NaN
    assert torch.isfinite(huge)


def test_sgns_loss_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
                   for shape in [(3, 4), (3, 4), (3, 2, 4)])
    assert torch.autograd.gradcheck(lambda v, u, n: sgns_loss(v, u, n, reduction="none"), inputs)


def test_sgns_loss_gradient_formula():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(1, 5, generator=g, dtype=torch.float64, requires_grad=True)
    u_o = torch.randn(1, 5, generator=g, dtype=torch.float64)
    u_neg = torch.randn(1, 3, 5, generator=g, dtype=torch.float64)
    sgns_loss(v, u_o, u_neg).backward()
    s_o, s_k = torch.sigmoid(u_o[0] @ v[0].detach()), torch.sigmoid(u_neg[0] @ v[0].detach())
    torch.testing.assert_close(v.grad[0], (s_o - 1) * u_o[0] + (s_k[:, None] * u_neg[0]).sum(0))


def test_sgns_loss_bad_inputs():
    v = torch.zeros(2, 3)
    for args in [(v, torch.zeros(2, 4), torch.zeros(2, 5, 3)), (v, v, torch.zeros(2, 3)),
                 (v, v, torch.zeros(3, 5, 3)), (v, v, torch.zeros(2, 5, 4))]:
        with pytest.raises(ValueError, match="expected"):
            sgns_loss(*args)
    with pytest.raises(ValueError):
        sgns_loss(v, v, torch.zeros(2, 1, 3), reduction="max")
    with pytest.raises(TypeError):
        sgns_loss(v, v, [[0.0]])


def test_skipgram_init_forward_and_shapes():
    model = SkipGram(10, 4, torch.Generator().manual_seed(0))
    assert model.E.weight.abs().max() <= 0.5 / 4 and torch.equal(model.U.weight, torch.zeros(10, 4))
    c, o, neg = torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([[5, 6], [7, 8]])
    assert math.isclose(model(c, o, neg).item(), 3 * math.log(2), rel_tol=1e-6)  # U = 0: every score is 0
    with torch.no_grad():
        model.U.weight.normal_()
    torch.testing.assert_close(model(c, o, neg), sgns_loss(model.E.weight[c], model.U.weight[o], model.U.weight[neg]))
    with pytest.raises(ValueError, match=r"expected c \(B,\)"):
        model(c, o, neg[0])
    with pytest.raises(ValueError, match="size 10"):
        model(c, torch.tensor([3, 10]), neg)
    with pytest.raises(TypeError, match="tensors"):
        model([1, 2], o, neg)


# ------------------------------------------------------------------------------------------ batches, training
def test_sgns_batches_are_repeatable_and_well_formed():
    sentences = [torch.tensor([1, 2, 3, 1, 2]), torch.tensor([3, 3, 1])]
    config = SGNSConfig(window=2, negatives=3, batch_size=4, subsample=0.0, seed=5)
    first = list(sgns_batches(sentences, 5, config)(0))
    again = list(sgns_batches(sentences, 5, config)(0))
    assert all(torch.equal(a, b) for x, y in zip(first, again, strict=True) for a, b in zip(x, y, strict=True))
    pairs = [(a, b) for c, o, _ in first for a, b in zip(c.tolist(), o.tolist(), strict=True)]
    full = _brute_force_pairs([s.tolist() for s in sentences], 2)
    assert 2 * 4 + 2 * 2 <= len(pairs) <= len(full)  # all distance-1 pairs, some of the distance-2 ones
    assert all(pairs.count(p) <= full.count(p) for p in pairs)
    for c, o, neg in first:
        assert c.shape == o.shape and neg.shape == (len(c), 3) and len(c) <= 4
        assert not {0, 4} & set(neg.flatten().tolist())  # ids that never occur are never drawn as noise
    epoch1 = list(sgns_batches(sentences, 5, config)(1))
    assert not all(torch.equal(a[2], b[2]) for a, b in zip(first, epoch1, strict=False))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        sgns_batches(sentences, 3, config)
    with pytest.raises(ValueError):
        sgns_batches([torch.tensor([0.5])], 3, config)
    with pytest.raises(ValueError, match="no words"):
        sgns_batches([torch.zeros(0, dtype=torch.long)], 3, config)


def test_short_training_recovers_the_word_kinds():
    sentences, kind_of = make_kinds_corpus(1000, seed=0)
    vocab = Vocabulary.build(sentences)
    ids = [vocab.encode(s) for s in sentences]
    config = SGNSConfig(embed_size=16, window=2, epochs=4, subsample=0.0, batch_size=512, lr=0.01, seed=0)
    model, history = train_sgns(ids, len(vocab), config, progress=False, verbose=False)
    assert history[-1] < history[0] - 1.0
    E = model.vectors
    for word, kind in kind_of.items():
        nearest = most_similar(E, vocab.itos, word, k=1, exclude=[UNK])[0][0]
        assert kind_of.get(nearest) == kind, f"{word} -> {nearest}"


# ------------------------------------------------------------------------------------------------- evaluation
def test_rank_and_spearman_match_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, generator=g)
    y = torch.randint(0, 6, (60,), generator=g).float()  # many ties
    torch.testing.assert_close(rank(y), torch.as_tensor(scipy.stats.rankdata(y.numpy()), dtype=torch.float64))
    assert math.isclose(spearman(x, y), scipy.stats.spearmanr(x.double(), y.double()).statistic, abs_tol=1e-9)
    assert math.isclose(spearman(x, 2 * x + 1), 1.0) and math.isclose(spearman(x, -(x**3)), -1.0)
    assert math.isnan(spearman(x, torch.ones(60)))
    for a, b in [(x, y[:5]), (x[:1], y[:1]), (x[None], y[None])]:
        with pytest.raises(ValueError):
            spearman(a, b)
    big = torch.randint(0, 50, (20_000,), generator=g)  # many ties, too long for an (n, n) comparison
    torch.testing.assert_close(rank(big), torch.as_tensor(scipy.stats.rankdata(big.numpy()), dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        rank(torch.tensor([1.0, math.nan]))


def test_evaluate_word_pairs_reports_the_oov_rate():
    E = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    vocab = ["a", "b", "c", "d"]
    pairs = [("a", "b", 9.0), ("a", "c", 5.0), ("a", "d", 1.0), ("a", "zebra", 3.0)]
    result = evaluate_word_pairs(E, vocab, pairs)
    assert result.n_pairs == 3 and math.isclose(result.oov_rate, 0.25) and math.isclose(result.spearman, 1.0)
    assert evaluate_word_pairs(E, {w: i for i, w in enumerate(vocab)}, pairs) == result
    with pytest.raises(ValueError, match="only 0 of 1"):
        evaluate_word_pairs(E, vocab, [("x", "y", 1.0)])
    with pytest.raises(ValueError):
        evaluate_word_pairs(E, vocab, [])


def test_most_similar_and_analogy_on_a_known_table():
    # a 2-D world: gender along x, royalty along y
    vocab = ["man", "woman", "king", "queen", "apple"]
    E = torch.tensor([[1.0, 0.1], [-1.0, 0.1], [1.0, 1.0], [-1.0, 1.0], [0.2, -1.0]])
    top = most_similar(E, vocab, "king", k=4)
    assert [w for w, _ in top][0] == "man" and "king" not in [w for w, _ in top]
    assert all(a[1] >= b[1] for a, b in zip(top, top[1:], strict=False))
    assert analogy(E, vocab, "man", "king", "woman")[0][0] == "queen"
    assert most_similar(E, vocab, torch.tensor([0.0, -1.0]), k=1)[0][0] == "apple"
    with pytest.raises(KeyError):
        most_similar(E, vocab, "zebra")
    with pytest.raises(ValueError):
        most_similar(E, vocab[:3], "king")
    with pytest.raises(ValueError):
        most_similar(E, vocab, "king", k=0)
    with pytest.raises(TypeError, match="row order"):
        most_similar(E, {w: i for i, w in enumerate(vocab)}, "king")


# ------------------------------------------------------------------------------------------------- pretrained
def test_minilm_token_table_loads_offline_and_makes_sense():
    E, vocab = load_minilm_token_embeddings()
    assert E.shape == (30_522, 384) and E.dtype == torch.float32 and len(vocab) == 30_522
    assert vocab[0] == "[PAD]" and vocab[100] == "[UNK]" and not E.requires_grad
    assert load_minilm_token_embeddings()[0] is E  # cached
    neighbours = {w for w, _ in most_similar(E, vocab, "king", k=10)}
    assert {"queen", "monarch", "prince"} <= neighbours
    assert analogy(E, vocab, "man", "king", "woman")[0][0] == "queen"
