"""Chapter 8's models against their references: Procrustes recovers a rotation and keeps cosines, least squares
and translation equal gensim's TranslationMatrix, greedy replies equal chapter 4's generate, the probe equals
scikit-learn's logistic regression, the towers and the recommenders never return what a reader has seen.

covers: mmtutor.applications.translation, mmtutor.applications.rag, mmtutor.applications.recommend,
mmtutor.applications.sentiment
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmtutor.alignment import ContrastiveModel, clip_loss
from mmtutor.applications.rag import (
    build_prompt,
    contains_answer,
    greedy_replies,
    normalize_answer,
    prompt_ids,
    shared_prefix_length,
)
from mmtutor.applications.recommend import (
    ItemTower,
    UserTower,
    content_profiles,
    held_out_relevance,
    history_pairs,
    pad_histories,
    popularity,
    recommend,
    sampled_softmax_loss,
    seen_matrix,
    top_unseen,
)
from mmtutor.applications.sentiment import (
    cross_validated_predictions,
    fit_logistic,
    probe_predict,
    stratified_folds,
)
from mmtutor.applications.translation import least_squares_map, leave_one_out, precision_at, procrustes, translate
from mmtutor.data.bilingual import load_en_it
from mmtutor.language_model import GPT, GPTConfig, generate

# ----------------------------------------------------------------------------- translation


def test_procrustes_is_orthogonal_and_recovers_a_rotation():
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))  # a random rotation
    X = torch.randn(40, 16, generator=g, dtype=torch.float64)
    Z = X @ Q + 0.01 * torch.randn(40, 16, generator=g, dtype=torch.float64)
    W = procrustes(X, Z)
    torch.testing.assert_close(W.T @ W, torch.eye(16, dtype=torch.float64))
    assert (W - Q).abs().max() < 0.01
    # orthogonal maps keep every cosine: the neighbourhoods of the source survive
    a, b = torch.randn(2, 16, generator=g, dtype=torch.float64)
    assert F.cosine_similarity(a @ W, b @ W, dim=0).item() == pytest.approx(F.cosine_similarity(a, b, dim=0).item())
    # and no orthogonal matrix fits better (try a few random ones)
    best = (X @ W - Z).norm()
    for _ in range(5):
        R, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
        assert (X @ R - Z).norm() > best
    with pytest.raises(ValueError, match="one dimension"):
        procrustes(X, Z[:, :8])


def test_least_squares_is_the_minimum_norm_solution_of_numpy():
    g = torch.Generator().manual_seed(1)
    X, Z = torch.randn(10, 30, generator=g), torch.randn(10, 30, generator=g)  # fewer pairs than dimensions
    W = least_squares_map(X, Z)
    np.testing.assert_allclose(W.numpy(), np.linalg.lstsq(X.double().numpy(), Z.double().numpy(), rcond=None)[0],
                               atol=1e-8)
    torch.testing.assert_close(X.double() @ W, Z.double())  # it fits exactly
    with pytest.raises(ValueError, match="same number"):
        least_squares_map(X, Z[:5])


def _gensim():
    from gensim.models import KeyedVectors, TranslationMatrix
    from gensim.test.utils import datapath

    src = KeyedVectors.load_word2vec_format(datapath("EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt"))
    tgt = KeyedVectors.load_word2vec_format(datapath("IT.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt"))
    return src, tgt, TranslationMatrix


def test_least_squares_and_translation_equal_gensim_translation_matrix():
    src, tgt, TranslationMatrix = _gensim()
    en, E_en, it, E_it, pairs = load_en_it()
    X = E_en[[en.index(a) for a, _ in pairs]]
    Z = E_it[[it.index(b) for _, b in pairs]]
    tm = TranslationMatrix(src, tgt, word_pairs=pairs)
    W = least_squares_map(F.normalize(X, dim=1), F.normalize(Z, dim=1))
    np.testing.assert_allclose(W.numpy(), tm.translation_matrix, atol=1e-4)
    found = leave_one_out(X, Z, least_squares_map, E_it, [it.index(b) for _, b in pairs], k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gensim warns that it uses its own vectors
        for i, (a, _) in enumerate(pairs):
            held_out = TranslationMatrix(src, tgt, word_pairs=[p for j, p in enumerate(pairs) if j != i])
            theirs = held_out.translate([a], topn=5, source_lang_vec=src, target_lang_vec=tgt)[a]
            assert [it[j] for j in found[i].tolist()] == theirs


def test_translate_and_precision_at_k():
    target = torch.eye(4)
    X = torch.tensor([[0.0, 1.0, 0.1, 0.0], [0.0, 0.0, 0.0, 1.0]])
    found = translate(X, torch.eye(4), target, k=2)
    assert found.tolist() == [[1, 2], [3, 0]]
    assert precision_at(found, torch.tensor([2, 3]), 1).tolist() == [0.0, 1.0]
    assert precision_at(found, torch.tensor([2, 3]), 2).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="land in"):
        translate(X, torch.eye(3), target)


# ----------------------------------------------------------------------------- RAG


def test_build_prompt_numbers_the_passages():
    closed = build_prompt("Who won?")
    assert len(closed) == 1 and closed[0]["role"] == "user" and closed[0]["content"].endswith("Question: Who won?")
    open_ = build_prompt("Who won?", ["Ann won.", "Bob lost."])
    assert "[1] Ann won.\n[2] Bob lost." in open_[0]["content"]
    assert open_[0]["content"].index("[2]") < open_[0]["content"].index("Question:")
    with pytest.raises(TypeError, match="list of strings"):
        build_prompt("Who won?", "Ann won.")
    with pytest.raises(ValueError, match="non-empty"):
        build_prompt("  ")


def test_answers_are_normalised_before_matching():
    assert normalize_answer("It rose 25 Per cent!") == "it rose 25 percent"
    assert normalize_answer("$2,300 warheads; 19%") == "2300 warheads 19 percent"
    assert contains_answer("About 1000 jobs.", ["1,000"])
    assert contains_answer("Senator Brian  Greig.", ["Brian Greig"])
    assert not contains_answer("Kerryn Phelps", ["Kerry"])  # whole words only
    assert not contains_answer("", ["x"])
    with pytest.raises(TypeError, match="non-empty list"):
        contains_answer("a", "a")


def test_greedy_replies_equal_generate_at_temperature_zero_batched_or_not():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=64, d_model=32, n_heads=4, n_layers=2))
    prompts = [[3, 14, 15, 9, 2], [2, 7, 1, 8, 2], [1, 4, 1], [4, 2, 4, 2, 1]]  # lengths 5, 5, 3, 5
    references = [generate(model, torch.tensor([p]), 12, temperature=0)[0, len(p):].tolist() for p in prompts]
    unused = next(t for t in range(50) if all(t not in r for r in references))
    assert greedy_replies(model, prompts, stop_id=unused, max_new_tokens=12, batch_size=2) == references
    assert greedy_replies(model, prompts, stop_id=unused, max_new_tokens=12, batch_size=8) == references
    stop = references[0][4]
    cut = [r[:r.index(stop)] if stop in r else r for r in references]
    assert greedy_replies(model, prompts, stop_id=stop, max_new_tokens=12) == cut
    with pytest.raises(ValueError, match="context"):
        greedy_replies(model, prompts, stop_id=unused, max_new_tokens=60)


def test_greedy_replies_share_a_prefix_and_pad_prompts_of_any_length():
    from mmtutor.pretrained.llama import Llama, LlamaConfig
    torch.manual_seed(1)
    llama = Llama(LlamaConfig(vocab_size=50, context_length=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2,
                              d_ff=64)).eval()
    torch.manual_seed(2)
    gpt = GPT(GPTConfig(vocab_size=50, context_length=64, d_model=32, n_heads=4, n_layers=2)).eval()
    prefix = [5, 6, 7, 8]  # a shared chat template
    prompts = [prefix + [3, 14, 15, 9, 2], prefix + [1], prefix + [2, 7, 1], prefix + [4, 2, 4, 2, 1], [9, 9]]
    assert shared_prefix_length(prompts[:4]) == 4 and shared_prefix_length(prompts) == 0
    assert shared_prefix_length([[1, 2], [1, 2]]) == 1  # each keeps a token of its own
    for model in (llama, gpt):  # padded (Llama) or grouped by length (GPT), the prefix run once either way
        references = [generate(model, torch.tensor([p]), 10, temperature=0)[0, len(p):].tolist() for p in prompts]
        unused = next(t for t in range(50) if all(t not in r for r in references))
        assert greedy_replies(model, prompts, stop_id=unused, max_new_tokens=10, batch_size=5) == references
        assert greedy_replies(model, prompts, stop_id=unused, max_new_tokens=10, batch_size=2) == references


class _CharTokenizer:
    def encode(self, text):
        return [ord(c) for c in text]

    def chat(self, messages):
        return "<u>" + messages[0]["content"] + "</u><a>"


def test_prompt_ids_cut_the_passages_to_the_budget():
    tok = _CharTokenizer()
    full = prompt_ids(tok, "Who?", ["Ann won the race.", "Bob lost."])
    assert full == tok.encode(tok.chat(build_prompt("Who?", ["Ann won the race.", "Bob lost."])))
    cut = prompt_ids(tok, "Who?", ["Ann won the race.", "Bob lost."], budget=len(full) - 5)
    assert len(cut) == len(full) - 5 and cut[-20:] == full[-20:]  # the question and the end stay whole
    assert "".join(map(chr, cut)).count("[2] Bob") == 1 and "lost." not in "".join(map(chr, cut))
    with pytest.raises(ValueError, match="no room"):
        prompt_ids(tok, "Who?", ["Ann"], budget=10)


# ----------------------------------------------------------------------------- recommendation


def test_histories_pairs_and_seen():
    h = [[3, 1, 4], [1], [5, 9]]
    assert pad_histories(h, 10).tolist() == [[3, 1, 4], [1, -1, -1], [5, 9, -1]]
    assert pad_histories(h, 10, max_len=2).tolist() == [[1, 4], [1, -1], [5, 9]]  # the most recent clicks
    hist, target = history_pairs(h, 10, max_len=3)
    assert target.tolist() == [3, 1, 4, 5, 9]  # a single click predicts nothing
    assert hist.tolist() == [[1, 4, -1], [3, 4, -1], [3, 1, -1], [9, -1, -1], [5, -1, -1]]
    seen = seen_matrix(h, 10)
    assert seen.sum().item() == 6 and seen[0, 4] and not seen[1, 4]
    assert popularity(h, 10)[1].item() == 2
    with pytest.raises(ValueError, match="outside"):
        seen_matrix([[10]], 10)


def test_towers_share_the_item_tower_ignore_padding_and_train_with_clip_loss():
    g = torch.Generator().manual_seed(0)
    content = torch.randn(20, 6, generator=g)
    torch.manual_seed(0)
    items = ItemTower(20, 8, content)
    model = ContrastiveModel(UserTower(items), items)
    assert len(list(model.parameters())) == len(list(items.parameters())) + 1  # shared tower, plus the scale
    history = torch.tensor([[2, 5, -1, -1]])
    torch.testing.assert_close(model.x_encoder(history), (items(torch.tensor([2])) + items(torch.tensor([5]))) / 2)
    assert torch.allclose(model.embed_x(history), model.embed_x(torch.tensor([[2, 5]])), atol=1e-6)
    hist = torch.randint(0, 20, (32, 4), generator=g)
    targets = hist[:, 0]  # a learnable pattern: the next item is the first of the history
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = clip_loss(*model(hist, targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0
    with pytest.raises(ValueError, match="at least one item"):
        model.embed_x(torch.tensor([[-1, -1]]))
    with pytest.raises(TypeError, match="ItemTower"):
        UserTower(nn.Linear(2, 2))


def test_sampled_softmax_is_half_of_clip_and_shift_invariant():
    g = torch.Generator().manual_seed(4)
    u, v = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    logits = 7.0 * F.normalize(u, dim=1) @ F.normalize(v, dim=1).T
    torch.testing.assert_close(sampled_softmax_loss(u, v, 7.0), F.cross_entropy(logits, torch.arange(16)))
    torch.testing.assert_close((sampled_softmax_loss(u, v, 7.0) + sampled_softmax_loss(v, u, 7.0)) / 2,
                               clip_loss(u, v, 7.0))
    shifted = sampled_softmax_loss(u, v, 7.0, torch.full((16,), -3.0))  # one log q for all: the softmax ignores it
    torch.testing.assert_close(shifted, sampled_softmax_loss(u, v, 7.0))
    log_q = torch.randn(16, generator=g)
    torch.testing.assert_close(sampled_softmax_loss(u, v, 7.0, log_q),
                               F.cross_entropy(logits - log_q[None, :], torch.arange(16)))
    with pytest.raises(ValueError, match="pair row by row"):
        sampled_softmax_loss(u, v[:4], 7.0)


def test_recommenders_never_return_seen_items_and_agree_with_a_full_sort():
    g = torch.Generator().manual_seed(2)
    users, items = torch.randn(6, 5, generator=g), torch.randn(30, 5, generator=g)
    seen = torch.rand(6, 30, generator=g) < 0.3
    found = recommend(users, items, seen, k=5)
    assert not seen.gather(1, found).any()
    cos = F.normalize(users, dim=1) @ F.normalize(items, dim=1).T
    assert torch.equal(found, top_unseen(cos, seen, 5))
    rel, n = held_out_relevance(found, [[found[0, 2].item(), 29], [], [0], [1], [2], [3]])
    assert rel[0].tolist() == [False, False, True, False, False] and n.tolist() == [2, 0, 1, 1, 1, 1]
    profiles = content_profiles([[0, 1], [2]], items)
    torch.testing.assert_close(profiles[1], F.normalize(items[2], dim=0))


# ----------------------------------------------------------------------------- sentiment


def test_logistic_probe_equals_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(3)
    x = torch.randn(120, 5, generator=g, dtype=torch.float64)
    y = ((x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 0.0], dtype=torch.float64)
          + 0.5 * torch.randn(120, generator=g, dtype=torch.float64)) > 0).long()
    lam = 0.05
    w, c = fit_logistic(x, y, weight_decay=lam)
    sk = LogisticRegression(C=1 / (lam * len(y)), tol=1e-10, max_iter=1000).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(w.numpy(), sk.coef_[0], rtol=1e-4, atol=1e-6)
    assert c.item() == pytest.approx(sk.intercept_[0], rel=1e-4, abs=1e-6)
    assert (probe_predict(x, y, x, lam) == y).float().mean() > 0.8


def test_folds_are_stratified_and_every_item_is_predicted_by_a_model_that_never_saw_it():
    labels = torch.tensor([0] * 30 + [1] * 20)
    fold = stratified_folds(labels, 5, seed=1)
    assert torch.equal(fold, stratified_folds(labels, 5, seed=1))
    for f in range(5):
        assert (labels[fold == f] == 0).sum() == 6 and (labels[fold == f] == 1).sum() == 4
    trained_on: dict[int, set[int]] = {}

    def fit_predict(train, test):
        for i in test.tolist():
            trained_on[i] = set(train.tolist())
        return labels[test]  # an oracle: the point is the bookkeeping

    predicted = cross_validated_predictions(fit_predict, 50, labels, n_folds=5)
    assert torch.equal(predicted, labels) and all(i not in trained_on[i] for i in range(50))
    with pytest.raises(ValueError, match="predictions"):
        cross_validated_predictions(lambda tr, te: te[:1], 50, labels, n_folds=5)
