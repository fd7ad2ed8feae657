r"""Chapter 3's exercises: attention.

* exercise 1, :func:`check_attention_by_hand` (warm-up, compute by hand, :func:`~mmtutor.exercises.check`): the
  weights and the output of one query against three keys, compared with
  :func:`~mmtutor.attention.scaled_dot_product_attention` at check time;
* exercise 2, :func:`check_no_positions_prediction` (ablate and predict, :func:`~mmtutor.exercises.check`): the
  held-out accuracy of the trained Transformer of section 5 once its positions are removed, measured by the check on a
  copy of the model;
* exercise 3, :func:`check_learned_positions` (change and train, :func:`~mmtutor.exercises.check_properties`): a
  Transformer with learned positions that answers the side question within half of section 5's budget; any change that
  gets there passes, the held-out accuracy is measured by the check.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

import torch
from torch import nn

from mmtutor.attention import scaled_dot_product_attention
from mmtutor.attention_tasks import TransformerSentenceClassifier
from mmtutor.context_tasks import SideQuestions, accuracy, side_questions
from mmtutor.exercises import check, check_properties, exercise

# --- Exercise 1: attention by hand -------------------------------------------------------------------------------

Q = torch.tensor([[1.0, 0.0]])                               # (T_q, d_k)
K = torch.tensor([[1.0, 1.0], [0.0, 2.0], [-1.0, 0.0]])      # (T_k, d_k)
V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])       # (T_k, d_v)

NOT_SCALED = "these are the weights of the raw dot products: divide each score by sqrt(d_k) = sqrt(2) first"
BY_D = "you divided the scores by d_k = 2: the scaling is by its square root"
NO_EXP = "you normalised the scores themselves: the softmax normalises their exponentials"
KEYS_SUMMED = "you averaged the keys: the output is the weighted average of the values"


def _reference() -> tuple[torch.Tensor, torch.Tensor]:
    out, weights = scaled_dot_product_attention(Q, K, V)
    return weights[0], out[0]  # (3,), (2,)


@exercise(1, tests="computing scaled dot-product attention by hand for one query, three keys and values: the scores "
                   "q . k_j / sqrt(d_k), their softmax, the weighted average of the values (a warm-up)",
          wrong_answers={"no division by sqrt(d_k)": NOT_SCALED, "divided by d_k": BY_D,
                         "normalised without the exponential": NO_EXP, "averaged the keys": KEYS_SUMMED},
          answers=lambda: list(_reference()))
def check_attention_by_hand(weights_by_hand: Any, output_by_hand: Any) -> None:
    r"""Exercise 1: ``weights_by_hand`` (3 numbers) and ``output_by_hand`` (2 numbers) for $\vec q = (1, 0)$,
    keys $(1, 1), (0, 2), (-1, 0)$ and values $(1, 0), (0, 1), (1, 1)$, as tensors; compared with the package's
    ``scaled_dot_product_attention`` at check time."""
    __tracebackhide__ = True
    weights, out = _reference()
    raw = (Q @ K.T)[0]
    check("Exercise 1 (weights)", weights_by_hand, weights, atol=1e-4, rtol=1e-3,
          mistakes=[(NOT_SCALED, torch.softmax(raw, 0)), (BY_D, torch.softmax(raw / 2, 0)),
                    (NO_EXP, raw / math.sqrt(2) / (raw / math.sqrt(2)).sum().clamp(min=1e-9))],
          hints=("score_j = (q . k_j) / sqrt(d_k), with d_k = 2",
                 "weight_j = exp(score_j) / (exp(score_1) + exp(score_2) + exp(score_3))"))
    check("Exercise 1 (output)", output_by_hand, out, atol=1e-4, rtol=1e-3,
          mistakes=[(KEYS_SUMMED, weights @ K)],
          hints=("the output is sum_j weight_j * v_j, a vector of 2 numbers",))


# --- shared: the held-out side questions ------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _held_out() -> SideQuestions:
    """The chapter's held-out side questions, ``side_questions(4000, seed=0)``, as section 5 uses them."""
    return side_questions(n_scenes=4000, seed=0)[1]


def _held_out_accuracy(model: nn.Module) -> float:
    return accuracy(model, _held_out(), next(model.parameters()).device)


def without_positions(model: TransformerSentenceClassifier) -> TransformerSentenceClassifier:
    r"""A copy of ``model`` whose position table is all zeros (the words get no position at all)."""
    blind = copy.deepcopy(model)
    with torch.no_grad():
        blind.encoder.pos.zero_()
    return blind


# --- Exercise 2: take the positions away -------------------------------------------------------------------------

SAME_AS_TRAINED = ("that is about what the model scores with its positions: without them, a caption and its same-bag "
                   "partner look identical to it")
ALL_WRONG = ("it cannot be wrong on both captions of a pair: they get the same answer, and their answers are "
             "opposite")
NOT_A_SHARE = "an accuracy is a number between 0 and 1"


def _no_positions_accuracy(model: TransformerSentenceClassifier) -> float:
    return _held_out_accuracy(without_positions(model))


@exercise(2, tests="predicting, from the permutation argument and the same-bag pairs, the held-out accuracy of the "
                   "trained Transformer once its positions are set to zero (within 0.02)",
          wrong_answers={"the accuracy with positions": SAME_AS_TRAINED, "0 (every answer wrong)": ALL_WRONG,
                         "a number outside [0, 1]": NOT_A_SHARE})
def check_no_positions_prediction(predicted_accuracy: Any, model: Any) -> None:
    r"""Exercise 2: ``predicted_accuracy``, the share of the held-out side questions that ``model`` (section 5's
    trained ``"Transformer + positions"``) answers once its position table is set to zero, predicted before
    measuring. The check measures it on a copy of ``model`` and compares within 0.02."""
    __tracebackhide__ = True
    if predicted_accuracy is Ellipsis or model is Ellipsis:
        return check("Exercise 2", ..., None)
    if not isinstance(model, TransformerSentenceClassifier) or model.encoder.config.positions == "none":
        return check_properties("Exercise 2", model, [(
            "the model is section 5's trained Transformer with positions (side_models['Transformer + positions'])",
            lambda m: False)])
    measured, trained = _no_positions_accuracy(model), _held_out_accuracy(model)
    share = isinstance(predicted_accuracy, int | float) and not isinstance(predicted_accuracy, bool) \
        and 0 <= predicted_accuracy <= 1
    check("Exercise 2", predicted_accuracy if share else -1.0, measured, atol=0.02, rtol=0,
          mistakes=[(NOT_A_SHARE, -1.0), (SAME_AS_TRAINED, trained), (ALL_WRONG, 0.0)],
          hints=("without positions, the block is permutation-equivariant and the pooling permutation-invariant",
                 "a caption and its same-bag partner then get the same sentence vector, so the same answer",
                 "the partners' answers are opposite: how many of each pair can be right?"),
          feedback=f"(Measured: {measured:.3f} without positions, {trained:.3f} with them.)")


# --- Exercise 3: learned positions --------------------------------------------------------------------------------

MAX_STEPS = 164  # 2 epochs of section 5's batches of 64: half its budget
THRESHOLD = 0.9


def _learned(m: Any) -> bool:
    return (isinstance(m, TransformerSentenceClassifier) and m.encoder.config.positions == "learned"
            and isinstance(m.encoder.pos, nn.Parameter))


@exercise(3, tests="making a Transformer with learned positions (a trained table) answer the side question within "
                   "half of section 5's budget: any change (the table's initial scale, the learning rate, the width) "
                   "that reaches 90% held-out accuracy in at most 164 steps passes")
def check_learned_positions(model: Any, history: Any) -> None:
    r"""Exercise 3: ``model``, a ``TransformerSentenceClassifier`` whose encoder has ``positions="learned"``, and
    ``history``, what ``mmtutor.train`` returned for it: at most 164 optimisation steps, and at least 90% of the
    held-out side questions right (measured by the check)."""
    __tracebackhide__ = True
    answer = (model, history)
    check_properties(
        "Exercise 3", answer,
        [("the model is a TransformerSentenceClassifier with positions='learned'", lambda a: _learned(a[0])),
         ("history is what mmtutor.train returned (one loss per step)", lambda a: len(a[1]) > 0),
         (f"it was trained for at most {MAX_STEPS} steps (2 epochs of batches of 64)",
          lambda a: len(a[1]) <= MAX_STEPS),
         (f"it answers at least {THRESHOLD:.0%} of the held-out side questions",
          lambda a: _held_out_accuracy(a[0]) >= THRESHOLD)],
        hints=("first train it as it comes (positions='learned', the settings of section 5, 2 epochs): what does "
               "it score, and why might the positions not get through?",
               "compare the size of the rows of model.encoder.pos with the rows of the word table model.encoder.embed",
               "the table starts at 0.1 * N(0, 1), the words at N(0, 1): the positions are a whisper the first block "
               "barely hears; start the table larger (for example like the words) and try again"),
        feedback=f"(Measured: {_held_out_accuracy(model):.3f} held out, after {len(history)} steps.)"
        if _learned(model) and history is not Ellipsis and len(history) > 0 else None)
