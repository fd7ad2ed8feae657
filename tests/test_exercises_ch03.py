"""Chapter 3's exercise checks: right answers pass, typical wrong ones get their message, stubs say TODO.

covers: mmtutor.exercises.ch03
"""

from __future__ import annotations

import math

import pytest
import torch

from mmtutor.attention_tasks import TransformerSentenceClassifier
from mmtutor.context_tasks import SentenceClassifier
from mmtutor.data.scenes import VOCAB
from mmtutor.exercises import ExerciseFailed, ch03
from mmtutor.transformer import BlockConfig, EncoderConfig


def _transformer(positions: str) -> TransformerSentenceClassifier:
    torch.manual_seed(0)
    return TransformerSentenceClassifier(EncoderConfig(len(VOCAB), BlockConfig(d_model=16, n_heads=2, d_ff=32),
                                                       max_len=16, positions=positions))


def test_exercise_1_by_hand(capsys):
    s = torch.tensor([1.0, 0.0, -1.0]) / math.sqrt(2)
    weights = s.exp() / s.exp().sum()
    output = weights @ ch03.V
    ch03.check_attention_by_hand(weights, output)
    assert capsys.readouterr().out.count("PASS Exercise 1") == 2
    with pytest.raises(ExerciseFailed, match="divide each score by sqrt") as failure:
        ch03.check_attention_by_hand(torch.softmax(s * math.sqrt(2), 0), output)
    assert f"{weights[0].item():.3f}" not in str(failure.value)
    with pytest.raises(ExerciseFailed, match="averaged the keys"):
        ch03.check_attention_by_hand(weights, weights @ ch03.K)
    with pytest.raises(ExerciseFailed, match="should be a torch.Tensor"):
        ch03.check_attention_by_hand(weights.tolist(), output)


def test_exercise_2_prediction(monkeypatch, capsys):
    model = _transformer("sinusoidal")
    monkeypatch.setattr(ch03, "_no_positions_accuracy", lambda m: 0.5)
    monkeypatch.setattr(ch03, "_held_out_accuracy", lambda m: 0.99)
    ch03.check_no_positions_prediction(0.49, model)
    assert "PASS Exercise 2" in capsys.readouterr().out
    for wrong, message in ((0.99, "with its positions"), (0.0, "cannot be wrong on both"), (50, "between 0 and 1")):
        with pytest.raises(ExerciseFailed, match=message):
            ch03.check_no_positions_prediction(wrong, model)
    with pytest.raises(ExerciseFailed, match="trained Transformer with positions"):
        ch03.check_no_positions_prediction(0.5, SentenceClassifier())
    with pytest.raises(ExerciseFailed, match="trained Transformer with positions"):
        ch03.check_no_positions_prediction(0.5, _transformer("none"))


def test_without_positions_is_exactly_at_chance_on_same_bag_pairs():
    model = _transformer("sinusoidal")
    blind = ch03.without_positions(model)
    assert (blind.encoder.pos == 0).all() and (model.encoder.pos != 0).any()  # a copy: the model keeps its own
    assert ch03._no_positions_accuracy(model) == pytest.approx(0.5, abs=1e-6)


def test_exercise_3_learned_positions(monkeypatch, capsys):
    learned = _transformer("learned")
    monkeypatch.setattr(ch03, "_held_out_accuracy", lambda m: 0.95)
    ch03.check_learned_positions(learned, [0.7] * 164)
    assert "PASS Exercise 3" in capsys.readouterr().out
    with pytest.raises(ExerciseFailed, match="at most 164 steps"):
        ch03.check_learned_positions(learned, [0.7] * 328)
    with pytest.raises(ExerciseFailed, match="positions='learned'"):
        ch03.check_learned_positions(_transformer("sinusoidal"), [0.7] * 164)
    monkeypatch.setattr(ch03, "_held_out_accuracy", lambda m: 0.5)
    with pytest.raises(ExerciseFailed, match="at least 90%"):
        ch03.check_learned_positions(learned, [0.7] * 164)


def test_stubs_say_todo(capsys):
    ch03.check_attention_by_hand(..., ...)
    ch03.check_no_positions_prediction(..., _transformer("sinusoidal"))
    ch03.check_learned_positions(..., ...)
    ch03.check_learned_positions(_transformer("learned"), ...)
    out = capsys.readouterr().out
    assert out.count("TODO Exercise") == 2 + 1 + 1 + 1 and "PASS" not in out
