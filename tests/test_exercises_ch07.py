"""Chapter 7's exercise checks: right answers pass (any correct form), typical wrong ones get their message, an
untrained model fails the trained-model check, stubs say TODO, and no message shows an expected value.

covers: mmtutor.exercises.ch07
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmtutor.alignment import ContrastiveModel, clip_loss, recall_at_k
from mmtutor.data.scene_pairs import distinct_gallery
from mmtutor.data.scenes import VOCAB
from mmtutor.encoders import SequenceTextEncoder, TextEncoderConfig
from mmtutor.exercises import ExerciseFailed, ch07, exercises_of


def test_the_checks_have_descriptive_names():
    assert [info.function for info in exercises_of(7)] == [
        "check_recall_any", "check_temperature", "check_hard_negative_ablation", "check_plain_loss_plateau"]


# --- exercise 1: recall@k with several right answers --------------------------------------------------------------

def _recall_loop(similarity, k, positives):
    found = 0
    for row, right in zip(similarity, positives, strict=True):
        top = sorted(range(len(row)), key=lambda j: -float(row[j]))[:k]
        found += any(bool(right[j]) for j in top)
    return found / len(similarity)


def test_recall_any_accepts_any_correct_form(capsys):
    ch07.check_recall_any(_recall_loop)
    ch07.check_recall_any(lambda s, k, p: recall_at_k(s, k, positives=p))
    assert capsys.readouterr().out.count("PASS Exercise 1") == 2


@pytest.mark.parametrize("wrong, message", [(ch07._first_only, "ANY"), (ch07._share, "share"),
                                            (ch07._one_more, r"k \+ 1")])
def test_recall_any_recognises_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        ch07.check_recall_any(wrong)


def test_recall_reference_counts_a_hit_when_any_right_answer_is_in_the_top_k():
    similarity = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8]])
    positives = torch.tensor([[False, True, True], [True, False, False]])
    assert ch07._recall_reference(similarity, 1, positives) == 0.0
    assert ch07._recall_reference(similarity, 2, positives) == 0.5    # row 0: its second best is right
    assert ch07._recall_reference(similarity, 3, positives) == 1.0


# --- exercise 2: the temperature ----------------------------------------------------------------------------------

def test_temperature_predictions_pass_and_match_the_formula(capsys):
    loss_at_1 = math.log(1 + 127 * math.exp(-1.0))
    scale = math.log(127 / (math.exp(0.01) - 1))
    assert abs(ch07.aligned_loss(1.0) - loss_at_1) < 1e-9             # the reference is clip_loss itself
    assert abs(ch07.scale_for(0.01) - scale) < 1e-6
    ch07.check_temperature(loss_at_1, scale)
    ch07.check_temperature(loss_at_1 * 1.004, scale + 0.05)            # within the stated tolerances
    assert capsys.readouterr().out.count("PASS Exercise 2") == 4                 # two parts, two answers


@pytest.mark.parametrize("loss, scale, message", [(math.log(128), 10.0, "random pairs"), (0.0, 10.0, "never one-hot"),
                                                  (None, 100.0, "clamps the scale"), (2.0, None, "FAIL")])
def test_temperature_mistakes_get_their_message_without_the_answer(loss, scale, message):
    right_loss, right_scale = ch07.aligned_loss(1.0), ch07.scale_for(0.01)
    with pytest.raises(ExerciseFailed, match=message) as failure:
        ch07.check_temperature(right_loss if loss is None else loss, right_scale + 3 if scale is None else scale)
    text = str(failure.value)
    assert f"{right_loss:.3f}" not in text and f"{right_scale:.2f}" not in text


# --- exercise 3: in-batch versus hard negatives -------------------------------------------------------------------

def _in_batch(model, batch):
    x, t, n, true = batch
    return clip_loss(model.embed_x(x), model.embed_text(t), model.logit_scale(), positives=true[:, :len(x)])


def _in_batch_diagonal(model, batch):
    x, t, _, _ = batch
    return clip_loss(model.embed_x(x), model.embed_text(t), model.logit_scale())


def _with_negatives(model, batch):
    from mmtutor.alignment import clip_loss_with_negatives

    x, t, n, true = batch
    return clip_loss_with_negatives(model.embed_x(x), model.embed_text(t), model.embed_text(n), model.logit_scale(),
                                    positives=true)


@pytest.fixture(scope="module")
def small_gallery():
    scenes, captions = distinct_gallery(100, seed=4)
    gallery_v = nn.functional.normalize(torch.randn(100, 6, generator=torch.Generator().manual_seed(0)), dim=1)
    return gallery_v, scenes, captions


def _untrained_tower():
    torch.manual_seed(0)
    return ContrastiveModel(nn.Identity(), SequenceTextEncoder(TextEncoderConfig(len(VOCAB), 8, 8, 6)))


def test_the_loss_part_accepts_both_forms_and_rejects_hard_negatives(small_gallery, capsys):
    model = _untrained_tower()
    for loss in (_in_batch, _in_batch_diagonal):
        with pytest.raises(ExerciseFailed, match="recall@1"):        # the loss passes, the untrained tower cannot
            ch07.check_hard_negative_ablation(loss, model, 0.5, small_gallery)
    assert capsys.readouterr().out.count("PASS Exercise 3 (loss)") == 2
    with pytest.raises(ExerciseFailed, match="changes when the hard negatives change"):
        ch07.check_hard_negative_ablation(_with_negatives, model, 0.5, small_gallery)


def test_the_swap_accuracy_is_measured_again(small_gallery, capsys, monkeypatch):
    model = _untrained_tower()
    monkeypatch.setattr(ch07, "MIN_RECALL", 0.0)                      # let the untrained tower through
    measured = ch07._swap_accuracy(model, *small_gallery)
    ch07.check_hard_negative_ablation(_in_batch, model, measured, small_gallery)
    assert "PASS Exercise 3 (swap accuracy)" in capsys.readouterr().out
    with pytest.raises(ExerciseFailed) as failure:
        ch07.check_hard_negative_ablation(_in_batch, model, measured + 0.1, small_gallery)
    assert f"{measured:.3f}" not in str(failure.value)


# --- exercise 4: where the plain loss stops -----------------------------------------------------------------------

def _history(plateau, steps=120):
    start = math.log(128)
    return [plateau + (start - plateau) * math.exp(-i / 10) for i in range(steps)]


def test_plateau_prediction_against_the_learners_training(capsys):
    plain = _history(math.log(12.8) + 0.05)
    ch07.check_plain_loss_plateau(math.log(128 / 10), plain)
    ch07.check_plain_loss_plateau(2.7, plain)                         # any value within the tolerance
    assert capsys.readouterr().out.count("PASS Exercise 4 (prediction)") == 2
    for wrong, message in [(math.log(128), "where the loss starts"), (0.0, "left out"), (math.log(10), "one image")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch07.check_plain_loss_plateau(wrong, plain)


def test_a_history_trained_with_positives_is_not_the_plain_loss():
    with pytest.raises(ExerciseFailed, match="stops above 1.5"):
        ch07.check_plain_loss_plateau(0.0, _history(0.02))
    with pytest.raises(ExerciseFailed, match="at least 50 steps"):
        ch07.check_plain_loss_plateau(2.5, _history(2.5, steps=10))


# --- stubs --------------------------------------------------------------------------------------------------------

def test_stubs_say_todo(capsys, small_gallery):
    def stub(*args):
        raise NotImplementedError("Exercise")

    ch07.check_recall_any(stub)
    ch07.check_temperature(..., ...)
    ch07.check_hard_negative_ablation(stub, ..., ..., small_gallery)
    ch07.check_plain_loss_plateau(..., ...)
    out = capsys.readouterr().out
    assert "PASS" not in out and "FAIL" not in out
    assert {f"TODO Exercise {n}" for n in (1, 2, 3, 4)} <= {line.split(" (")[0].split(":")[0] for line in
                                                            out.splitlines()}
