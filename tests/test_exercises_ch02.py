"""Chapter 2's exercise checks: right answers pass, typical wrong ones get their message, stubs say TODO.

covers: mmtutor.exercises.ch02
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmtutor.context_tasks import SentenceClassifier, side_questions
from mmtutor.exercises import ExerciseFailed, ch02


def test_exercise_1_counts(capsys):
    ch02.check_lstm_parameter_count(4 * (32 * 16 + 32 * 32) + 8 * 32, 32 * 16 + 32 * 32 + 64.0)
    assert capsys.readouterr().out.count("PASS Exercise 1") == 2
    with pytest.raises(ExerciseFailed, match="two, bias_ih and bias_hh") as failure:
        ch02.check_lstm_parameter_count(4 * (32 * 48 + 32), 1600)
    assert "6400" not in str(failure.value)
    with pytest.raises(ExerciseFailed, match="no gates"):
        ch02.check_lstm_parameter_count(6400, 6400)


def test_exercise_2_predictions(capsys):
    f0, f5 = 0.5, 1 / (1 + torch.exp(torch.tensor(-5.0, dtype=torch.float64)).item())
    ch02.check_cell_memory(f0 ** 20, f5 ** 20, 104)
    ch02.check_cell_memory(f0 ** 20, f5 ** 20, 103)  # within one step
    assert capsys.readouterr().out.count("PASS") == 6
    assert ch02.half_life(5.0) == 104 and abs(ch02.kept(5.0, 20) - f5 ** 20) < 1e-12
    with pytest.raises(ExerciseFailed, match="one step keeps"):
        ch02.check_cell_memory(f0, f5 ** 20, 104)
    with pytest.raises(ExerciseFailed, match="never 0"):
        ch02.check_cell_memory(0.0, f5 ** 20, 104)


def _gru(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    cell = nn.GRUCell(x.shape[1], h.shape[1], dtype=x.dtype)
    cell.load_state_dict({"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih, "bias_hh": bias_hh})
    with torch.no_grad():
        return cell(x, h)


def test_exercise_3_gru(capsys):
    ch02.check_gru_step(_gru)
    ch02.check_gru_step(ch02._gru_variant())  # the base of the wrong variants is the right cell
    assert capsys.readouterr().out.count("PASS Exercise 3") == 2
    for variant, message in (({"reset_before": True}, "before the product"), ({"swap_update": True}, r"\(1 - z\)"),
                             ({"swap_order": True}, "order r, z, n")):
        with pytest.raises(ExerciseFailed, match=message):
            ch02.check_gru_step(ch02._gru_variant(**variant))


def test_exercise_4_reverse_model_and_prediction(monkeypatch, capsys):
    reverse = ch02.reverse_reference
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    assert reverse(ids, torch.tensor([3, 2])).tolist() == [[7, 6, 5, 0], [9, 8, 0, 0]]
    with pytest.raises(ExerciseFailed, match="padding included"):
        ch02.check_backwards_lstm(lambda i, lengths: i.flip(1), ..., ...)
    model = SentenceClassifier(encoder="lstm")
    monkeypatch.setattr(ch02, "_backwards_accuracy", lambda m: 0.97)
    ch02.check_backwards_lstm(reverse, model, True)
    assert capsys.readouterr().out.count("PASS Exercise 4") == 3
    with pytest.raises(ExerciseFailed, match="Exercise 4 \\(prediction\\)"):
        ch02.check_backwards_lstm(reverse, model, False)
    monkeypatch.setattr(ch02, "_backwards_accuracy", lambda m: 0.5)
    with pytest.raises(ExerciseFailed, match="at least 90%"):
        ch02.check_backwards_lstm(reverse, model, False)
    with pytest.raises(ExerciseFailed, match="encoder='lstm'"):
        ch02.check_backwards_lstm(reverse, SentenceClassifier(encoder="mean"), True)


def test_stubs_say_todo(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 3")

    ch02.check_lstm_parameter_count(..., ...)
    ch02.check_cell_memory(..., ..., ...)
    ch02.check_gru_step(stub)
    ch02.check_backwards_lstm(stub, ..., ...)
    out = capsys.readouterr().out
    assert out.count("TODO Exercise") == 2 + 3 + 1 + 3 and "PASS" not in out


def test_the_held_out_questions_are_the_chapters_reversed():
    questions = ch02._held_out()
    assert len(questions) == 1720 and (questions.lengths == 10).all()
    forward = side_questions(n_scenes=4000, seed=0)[1]
    assert questions.texts == forward.texts and torch.equal(questions.ids, forward.ids.flip(1))  # no padding here
