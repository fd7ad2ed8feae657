"""Chapter 4's baselines and experiments: counting models against hand computations and brute force, bits per
byte, held-out scoring that scores every token once, the data split, training windows, the LSTM language model,
the learning-rate schedule.

covers: mmtutor.ngram, mmtutor.lm_tasks
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from torch import nn

from mmtutor.language_model import GPT, GPTConfig
from mmtutor.lm_tasks import (
    LSTMLanguageModel,
    load_lee_documents,
    mean_loss,
    next_token_loss,
    random_windows,
    sequence_nll,
    split_documents,
    warmup_cosine_adamw,
)
from mmtutor.ngram import (
    bigram_log_probs,
    bits_per_byte,
    kneser_ney_log_probs,
    ngram_nll,
    table_nll,
    uniform_log_probs,
    unigram_log_probs,
)


def small_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=50, context_length=40, d_model=32, n_heads=4, n_layers=2))


# ----------------------------------------------------------------------------- counting baselines, by hand
def test_uniform_perplexity_is_the_vocabulary_size() -> None:
    ids = torch.randint(0, 256, (1000,))
    nll = table_nll(uniform_log_probs(256), ids)
    assert math.isclose(math.exp(nll / 999), 256, rel_tol=1e-12)


def test_unigram_and_add_k_bigram_by_hand() -> None:
    torch.testing.assert_close(unigram_log_probs(torch.tensor([0, 1, 1, 2]), 3, k=1.0).exp(),
                               torch.tensor([2 / 7, 3 / 7, 2 / 7], dtype=torch.float64))
    # pairs of [0, 1, 0, 1, 1]: (0,1) twice, (1,0) once, (1,1) once
    p = bigram_log_probs(torch.tensor([0, 1, 0, 1, 1]), 2, k=1.0).exp()
    torch.testing.assert_close(p, torch.tensor([[1 / 4, 3 / 4], [2 / 4, 2 / 4]], dtype=torch.float64))
    nll = table_nll(p.log(), torch.tensor([1, 1, 0]))
    assert math.isclose(nll, -math.log(2 / 4) - math.log(2 / 4))


def test_kneser_ney_by_hand() -> None:
    # seen pairs: (0,1) (1,0) (1,1): N1+(..) = 3, continuation counts [1, 2] -> p_cont = [2/5, 3/5]
    p = kneser_ney_log_probs(torch.tensor([0, 1, 0, 1, 1]), 2, d=0.5).exp()
    torch.testing.assert_close(p, torch.tensor([[0.1, 0.9], [0.45, 0.55]], dtype=torch.float64))
    unseen = kneser_ney_log_probs(torch.tensor([0, 1, 0]), 3, d=0.5).exp()  # token 2 never comes first
    torch.testing.assert_close(unseen[2], torch.tensor([2 / 5, 2 / 5, 1 / 5], dtype=torch.float64))
    lee = torch.tensor(list(load_lee_documents()[0].encode()))
    for table in (kneser_ney_log_probs(lee, 256, 0.7), bigram_log_probs(lee, 256, 0.01)):
        torch.testing.assert_close(table.exp().sum(1), torch.ones(256, dtype=torch.float64))


def test_bits_per_byte_and_bad_inputs() -> None:
    assert math.isclose(bits_per_byte(10 * math.log(2), 10), 1.0)
    with pytest.raises(ValueError, match=r"d must lie in \(0.0, 1.0\)"):
        kneser_ney_log_probs(torch.tensor([0, 1]), 2, d=1.0)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\)"):
        bigram_log_probs(torch.tensor([0, 5]), 2)
    with pytest.raises(ValueError, match="n_bytes must be an int >= 1"):
        bits_per_byte(1.0, 0)


# ----------------------------------------------------------------------------- held-out scoring, data, the LSTM
class TableLM(nn.Module):
    """A bigram table as a model: logits[t] = log p(. | ids[t])."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        super().__init__()
        self.log_probs = log_probs.float()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.log_probs[ids]  # (B, T, V)


@pytest.mark.parametrize(("context_length", "stride"), [(8, None), (8, 8), (8, 3), (50, 1), (200, None)])
def test_sequence_nll_scores_every_token_once(context_length: int, stride: int | None) -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (101,), generator=g)
    table = kneser_ney_log_probs(ids[:60], 6, 0.5)
    got = sequence_nll(TableLM(table), ids, context_length, stride=stride, batch_size=4)
    assert math.isclose(got, table_nll(table, ids), rel_tol=1e-6)


def test_split_and_windows() -> None:
    docs = load_lee_documents()
    assert len(docs) == 300
    train, valid, test = split_documents(docs, 30, 30)
    assert "\n".join([train, valid, test]) == "\n".join(docs) and test.count("\n") == 29
    ids = torch.arange(1000)
    a, b = random_windows(ids, 16, 4, 3, seed=1), random_windows(ids, 16, 4, 3, seed=1)
    assert len(a) == 3 and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].shape == (4, 17) and (a[0].diff(dim=1) == 1).all()  # contiguous slices
    with pytest.raises(ValueError, match="too few"):
        random_windows(torch.arange(10), 16, 4, 3)


def test_next_token_loss_and_the_lstm_is_causal() -> None:
    torch.manual_seed(0)
    model = LSTMLanguageModel(30, hidden_size=16)
    batch = torch.randint(0, 30, (3, 9))
    logits = model(batch[:, :-1])
    assert logits.shape == (3, 8, 30)
    expected = -torch.log_softmax(logits, -1).gather(-1, batch[:, 1:, None]).mean()
    torch.testing.assert_close(next_token_loss(model, batch), expected)
    changed = batch.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 30
    with torch.no_grad():
        assert torch.equal(model(batch)[:, :5], model(changed)[:, :5])


def test_ngram_nll_equals_the_bigram_table_and_a_brute_force_trigram() -> None:
    g = torch.Generator().manual_seed(0)
    train, test = torch.randint(0, 5, (300,), generator=g), torch.randint(0, 5, (100,), generator=g)
    assert math.isclose(ngram_nll(train, test, 5, 2, 0.5), table_nll(bigram_log_probs(train, 5, 0.5), test),
                        rel_tol=1e-12)
    tr, t = train.tolist(), test.tolist()
    c3, c2 = Counter(zip(tr, tr[1:], tr[2:], strict=False)), Counter(zip(tr[:-2], tr[1:-1], strict=True))
    brute = -sum(math.log((c3[tuple(t[i:i + 3])] + 0.5) / (c2[tuple(t[i:i + 2])] + 0.5 * 5)) for i in range(98))
    assert math.isclose(ngram_nll(train, test, 5, 3, 0.5), brute, rel_tol=1e-12)
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        ngram_nll(train, test, 5, 1)
    with pytest.raises(ValueError, match="too large"):
        ngram_nll(train, test, 256, 8)


def test_warmup_cosine_schedule_and_mean_loss() -> None:
    model = small_gpt()
    optimizer = warmup_cosine_adamw(model, 1e-2, total_steps=20, warmup=0.25, final_fraction=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
    assert lrs[:5] == pytest.approx([2e-3, 4e-3, 6e-3, 8e-3, 1e-2])  # linear warm-up over 5 steps
    assert lrs[5] == pytest.approx(1e-2) and all(a >= b for a, b in zip(lrs[5:], lrs[6:], strict=False))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # cosine down to final_fraction * lr
    batches = random_windows(torch.randint(0, 50, (500,)), 10, 4, 3, seed=0)
    with torch.no_grad():
        expected = sum(next_token_loss(model, b).item() for b in batches) / 3
    model.train()
    assert mean_loss(model, batches) == pytest.approx(expected) and model.training
