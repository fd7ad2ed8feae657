r"""Chapter 7's exercises: modality mapping and contrastive alignment.

* exercise 1, :func:`check_recall_any` (warm-up, :func:`~mmtutor.exercises.check_function`): recall@k when a
  query has several right answers (a hit when any of them is in the top k), against
  :func:`mmtutor.alignment.recall_at_k` on hidden inputs;
* exercise 2, :func:`check_temperature` (predict, :func:`~mmtutor.exercises.check`): the temperature: the lowest
  loss ``N = 128`` perfectly aligned pairs can reach at the scale ``s = 1``, and the scale they need for a loss
  below 0.01; the expected values come from :func:`mmtutor.alignment.clip_loss` at check time;
* exercise 3, :func:`check_hard_negative_ablation` (ablate, :func:`~mmtutor.exercises.check_properties` and
  :func:`~mmtutor.exercises.check`): in-batch versus hard negatives: the loss without the hard negatives, a text
  tower trained with it on the frozen image vectors, its accuracy on swapped captions measured again by the check;
* exercise 4, :func:`check_plain_loss_plateau` (predict, then train, :func:`~mmtutor.exercises.check_properties`
  and :func:`~mmtutor.exercises.check`): where the plain CLIP loss (the diagonal as the only answer) stops on the
  digits, predicted from the make-up of a batch, against the learner's own training.

The notebook's check cells call ``ch07.check_<what>(answer)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmtutor.alignment import ContrastiveModel, clip_loss, evaluate_retrieval, hard_negative_accuracy, recall_at_k
from mmtutor.data.scene_pairs import hard_negative_pairs
from mmtutor.data.scenes import VOCAB, Caption, Scene, encode
from mmtutor.encoders import SequenceTextEncoder, TextEncoderConfig
from mmtutor.exercises import check, check_function, check_properties, exercise

# --- Exercise 1: recall@k with several right answers -------------------------------------------------------------

ONE_ANSWER = ("you counted one right answer per query (the first of its row): a query is found when ANY of its "
              "right answers is among its top k")
SHARE = ("you measured the share of each query's right answers that are in its top k; recall@k asks whether at "
         "least one of them is there")
ONE_MORE = "your top k holds k + 1 items: a right answer at position k + 1 counts as found"


def _recall_inputs(generator: torch.Generator) -> tuple[torch.Tensor, int, torch.Tensor]:
    q, g = (int(n) for n in torch.randint(3, 25, (2,), generator=generator))
    similarity = torch.randn(q, g, generator=generator, dtype=torch.float64)  # no ties: any tie rule is right
    positives = torch.rand(q, g, generator=generator) < 0.2
    positives[torch.arange(q), torch.randint(0, g, (q,), generator=generator)] = True  # one or more per row
    return similarity, int(torch.randint(1, min(5, g) + 1, (1,), generator=generator)), positives


def _recall_reference(similarity: torch.Tensor, k: int, positives: torch.Tensor) -> float:
    return recall_at_k(similarity, k, positives=positives)


def _first_only(similarity: torch.Tensor, k: int, positives: torch.Tensor) -> float:
    return recall_at_k(similarity, k, positives.float().argmax(dim=1))


def _share(similarity: torch.Tensor, k: int, positives: torch.Tensor) -> float:
    top = similarity.topk(k, dim=1).indices  # (Q, k)
    return (positives.gather(1, top).sum(dim=1) / positives.sum(dim=1)).mean().item()


def _one_more(similarity: torch.Tensor, k: int, positives: torch.Tensor) -> float:
    return recall_at_k(similarity, min(k + 1, similarity.shape[1]), positives=positives)


@exercise(1, tests="recall@k when a query has several right answers (COCO's five captions per image): the fraction "
                   "of queries with at least one right answer among their k highest scores (a warm-up)",
          wrong_answers={"only the first right answer of each row counted": ONE_ANSWER,
                         "the share of right answers in the top k": SHARE, "the top k + 1 instead of k": ONE_MORE})
def check_recall_any(recall_any: Any) -> None:
    r"""Exercise 1: ``recall_any(similarity, k, positives) -> float`` for ``similarity (Q, G)`` and a bool
    ``positives (Q, G)`` with at least one True per row: the fraction of rows with a True among their ``k``
    highest scores. Compared with ``recall_at_k(similarity, k, positives=positives)`` on five hidden inputs of
    random sizes (scores without ties, so any tie rule is right), to 1e-6: a fraction of at most 24 rows computed
    in float32 or float64 (the fractions of one input differ by at least 1/24)."""
    __tracebackhide__ = True
    check_function("Exercise 1", recall_any, _recall_reference, _recall_inputs, trials=5, atol=1e-6, rtol=0,
                   mistakes=[(ONE_ANSWER, _first_only), (SHARE, _share), (ONE_MORE, _one_more)],
                   hints=("for each row, find the best score among its right answers",
                          "a row is found when fewer than k of its scores are higher than that best right score",
                          "similarity.masked_fill(~positives, -inf).amax(dim=1) is the best right score of each row"))


# --- Exercise 2: the temperature ------------------------------------------------------------------------------------

N_PAIRS = 128
RANDOM_PAIRS = "that is the loss of random pairs (every logit equal): aligned pairs have the logit s on the diagonal"
NEVER_ZERO = "at a finite scale the softmax is never one-hot: the N - 1 wrong texts keep some probability"
CLAMP = "100 is where CLIP clamps the scale; the loss of these pairs falls below 0.01 at a much smaller scale"


def aligned_loss(s: float, n: int = N_PAIRS) -> float:
    r"""The reference: :func:`~mmtutor.alignment.clip_loss` of ``n`` perfectly aligned, orthonormal pairs
    ($\hat u_i = \hat t_i = e_i$) at the scale ``s``, in float64."""
    e = torch.eye(n, dtype=torch.float64)
    return clip_loss(e, e, s).item()


def scale_for(loss: float, n: int = N_PAIRS) -> float:
    r"""The smallest scale at which :func:`aligned_loss` is below ``loss``, by bisection (the loss falls with ``s``)."""
    low, high = 1e-3, 100.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if aligned_loss(mid, n) < loss else (mid, high)
    return high


@exercise(2, tests="predicting what the temperature allows: the lowest CLIP loss of 128 perfectly aligned orthonormal "
                   "pairs at the scale s = 1, log(1 + 127 / e), and the scale s they need for a loss below 0.01",
          wrong_answers={"log N, the loss of random pairs": RANDOM_PAIRS, "0": NEVER_ZERO,
                         "100, CLIP's clamp": CLAMP},
          answers=lambda: [aligned_loss(1.0), scale_for(0.01)])
def check_temperature(lowest_loss_at_1: Any, scale_for_001: Any) -> None:
    r"""Exercise 2: ``lowest_loss_at_1``, the CLIP loss of 128 pairs whose image and text vectors are equal and
    orthonormal, at the fixed scale ``s = 1`` (within 0.5%); ``scale_for_001``, the smallest scale at which that
    loss falls below 0.01 (within 0.1). Both computed with ``clip_loss`` at check time."""
    __tracebackhide__ = True
    hints = ("aligned orthonormal pairs: the logit of the right text is s * 1, of each of the N - 1 others s * 0",
             "so each row's loss is -log(e^s / (e^s + (N - 1))) = log(1 + (N - 1) e^(-s)), and both sides agree",
             "for the scale, solve log(1 + 127 e^(-s)) < 0.01 for s")
    check("Exercise 2 (loss at s = 1)", lowest_loss_at_1, aligned_loss(1.0), atol=0, rtol=5e-3, hints=hints,
          mistakes=[(RANDOM_PAIRS, math.log(N_PAIRS)), (NEVER_ZERO, 0.0)])
    check("Exercise 2 (scale)", scale_for_001, scale_for(0.01), atol=0.1, rtol=0, hints=hints,
          mistakes=[(CLAMP, 100.0)],
          feedback="(So a fixed scale of 1 caps how sharp the softmax can be, however good the encoders: CLIP "
                   "learns s and starts it at 1 / 0.07 = 14.3.)")


# --- Exercise 3: in-batch versus hard negatives --------------------------------------------------------------------

USES_NEGATIVES = ("your loss changes when the hard negatives change: without hard negatives, only the batch's "
                  "images and captions enter the loss")
MIN_RECALL = 0.5  # text -> image recall@1 on folds of 100 held-out scenes (chance 0.01) a trained tower reaches


def _probe_batch(seed: int) -> tuple[ContrastiveModel, tuple[torch.Tensor, ...]]:
    """A small random text tower and a batch ``(x, t, n, true)`` shaped as section 4's, with one extra true pair."""
    g = torch.Generator().manual_seed(seed)
    b = int(torch.randint(4, 12, (1,), generator=g))
    with torch.random.fork_rng():  # the tower's initial weights, without touching the learner's random state
        torch.manual_seed(seed)
        model = ContrastiveModel(nn.Identity(), SequenceTextEncoder(TextEncoderConfig(len(VOCAB), 8, 8, 6)))
    x = torch.randn(b, 6, generator=g)
    t, n = (torch.randint(1, len(VOCAB), (b, 5), generator=g) for _ in range(2))
    true = torch.cat([torch.eye(b, dtype=torch.bool), torch.zeros(b, b, dtype=torch.bool)], dim=1)
    true[0, 1] = True  # one more true pair: the answer may leave it out or not
    return model, (x, t, n, true)


def _is_plain_clip_loss(in_batch_loss: Any) -> bool:
    """On five probe batches, the answer equals CLIP's loss of ``x`` and ``t`` (other true pairs left out or not)."""
    for seed in range(5):
        model, (x, t, n, true) = _probe_batch(seed)
        with torch.no_grad():
            got = float(in_batch_loss(model, (x, t, n, true)))
            v_x, v_t, s = model.embed_x(x), model.embed_text(t), model.logit_scale()
            right = [clip_loss(v_x, v_t, s, positives=true[:, :len(x)]), clip_loss(v_x, v_t, s)]
        if not any(abs(got - float(r)) <= 1e-5 * max(1.0, abs(float(r))) for r in right):
            return False
    return True


def _ignores_negatives(in_batch_loss: Any) -> bool:
    """The answer does not change when the batch's hard negatives ``n`` are replaced by others."""
    for seed in range(3):
        model, (x, t, n, true) = _probe_batch(seed)
        with torch.no_grad():
            if abs(float(in_batch_loss(model, (x, t, n, true))) - float(in_batch_loss(model, (x, t, t, true)))) > 1e-6:
                return False
    return True


def _swap_accuracy(model: nn.Module, gallery_v: torch.Tensor, scenes: Sequence[Scene],
                   captions: Sequence[Caption]) -> float:
    idx, positives, negatives = hard_negative_pairs(scenes, captions, "swap", seed=5)
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        pos = model.embed_text(encode([c.text for c in positives], 10)[0].to(device)).cpu()
        neg = model.embed_text(encode([c.text for c in negatives], 10)[0].to(device)).cpu()
    return hard_negative_accuracy(gallery_v[idx], pos, neg)


def _recall_at_1(model: nn.Module, gallery_v: torch.Tensor, captions: Sequence[Caption]) -> float:
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        v = model.embed_text(encode([c.text for c in captions], 10)[0].to(device)).cpu()
    folds = range(0, len(captions) - 99, 100)
    return sum(evaluate_retrieval(v[f:f + 100], gallery_v[f:f + 100])["R@1"] for f in folds) / len(folds)


@exercise(3, tests="ablating the hard negatives: CLIP's plain loss (in-batch negatives only) for the scene batches, "
                   "a text tower trained with it on the frozen image vectors, and its measured accuracy on swaps",
          wrong_answers={"a loss that still uses the hard negatives": USES_NEGATIVES})
def check_hard_negative_ablation(in_batch_loss: Any, no_negatives_model: Any, swap_accuracy: Any,
               gallery: tuple[torch.Tensor, Sequence[Scene], Sequence[Caption]]) -> None:
    r"""Exercise 3: ``in_batch_loss(model, batch)`` for a batch ``(x, t, n, true)`` of section 4 must be CLIP's loss
    of the images ``x`` and captions ``t`` alone (with the other true pairs left out or not: both are accepted),
    checked on five hidden probe batches, also with the negatives ``n`` replaced; ``no_negatives_model``, the text
    tower trained with it as in section 6, must retrieve (text-to-image recall@1 on folds of 100 held-out scenes at
    least 0.5, chance 0.01); ``swap_accuracy`` must be its accuracy on the swapped captions of
    ``gallery = (gallery_v, gallery_scenes, gallery_captions)``, as the check measures it again."""
    __tracebackhide__ = True

    check_properties("Exercise 3 (loss)", in_batch_loss,
                     [("it does not use the hard negatives n (its value stays the same when they change)",
                       _ignores_negatives),
                      ("it is CLIP's loss of the batch's images x and captions t (section 3's clip_loss, with "
                       "model.logit_scale())", _is_plain_clip_loss)],
                     mistakes=[(USES_NEGATIVES, lambda f: not _ignores_negatives(f))],
                     hints=("section 6's towers train with scene_loss; write the same without n (and without the "
                            "columns of true that belong to n)",
                            "clip_loss(model.embed_x(x), model.embed_text(t), model.logit_scale()), with "
                            "positives=true[:, :len(x)] if you leave the other true pairs out"))
    gallery_v, scenes, captions = gallery
    check_properties("Exercise 3 (model)", no_negatives_model,
                     [("it is a ContrastiveModel whose x tower is nn.Identity (the frozen image vectors)",
                       lambda m: isinstance(m, ContrastiveModel) and isinstance(m.x_encoder, nn.Identity)),
                      (f"its text-to-image recall@1 on folds of 100 held-out scenes is at least {MIN_RECALL}",
                       lambda m: _recall_at_1(m, gallery_v, captions) >= MIN_RECALL)],
                     hints=("train it with lit(...) as in section 6, passing your loss",))
    measured = None if no_negatives_model is Ellipsis else _swap_accuracy(no_negatives_model, gallery_v, scenes,
                                                                          captions)
    check("Exercise 3 (swap accuracy)", ... if measured is None else swap_accuracy, measured, atol=1e-6, rtol=0,
          hints=("measure it as section 6 does: hard_negative_pairs(gallery_scenes, gallery_captions, 'swap', seed=5) "
                 "and hard_negative_accuracy on the gallery's frozen image vectors",),
          feedback=None if measured is None else f"(Measured: {measured:.3f} on swapped captions without hard "
                                                 f"negatives.)")


# --- Exercise 4: where the plain loss stops on the digits ----------------------------------------------------------

WHERE_IT_STARTS = "log 128 is where the loss starts, with every logit equal; training gets well below it"
LEFT_OUT = ("0 is where the loss goes when the other true pairs are left out (section 7); with the diagonal as the "
            "only answer the same-digit captions still count as wrong")
ONE_PER_CLASS = ("log 10 would be right if a batch held one image per digit; count how many captions of each digit a "
                 "batch of 128 holds")
TOLERANCE = 0.2


def _plateau(history: Sequence[float]) -> float:
    return sum(history[-20:]) / 20


@exercise(4, tests="predicting where the plain CLIP loss stops when a batch holds many true pairs: about 13 captions "
                   "of each digit in a batch of 128 are indistinguishable, so each row's loss cannot go below about "
                   "log(128 / 10); checked against the learner's own training",
          wrong_answers={"log 128": WHERE_IT_STARTS, "0": LEFT_OUT, "log 10": ONE_PER_CLASS})
def check_plain_loss_plateau(predicted_plateau: Any, plain_history: Any) -> None:
    r"""Exercise 4: ``plain_history``, the loss history of the digit model of section 7 trained with the plain
    ``clip_loss`` (no ``positives``), must start near $\log 128$ and stop above 1.5 (the loss with the true pairs
    left out goes to 0); ``predicted_plateau``, predicted before training, must be within 0.2 of where it stopped
    (the mean of its last 20 steps)."""
    __tracebackhide__ = True
    check_properties("Exercise 4 (training)", plain_history,
                     [("it is the list of losses of at least 50 steps", lambda h: len(h) >= 50),
                      ("it starts near log 128, where an untrained model is",
                       lambda h: abs(h[0] - math.log(128)) < 0.5),
                      ("it stops above 1.5: trained with the plain loss, without positives",
                       lambda h: _plateau(h) > 1.5)],
                     hints=("train a fresh digit model (make_digit_model()) with a loss that calls clip_loss without "
                            "positives",))
    measured = None if plain_history is Ellipsis else _plateau(plain_history)
    check("Exercise 4 (prediction)", ... if measured is None else predicted_plateau, measured, atol=TOLERANCE, rtol=0,
          mistakes=[(WHERE_IT_STARTS, math.log(128)), (LEFT_OUT, 0.0), (ONE_PER_CLASS, math.log(10))],
          hints=("a batch of 128 holds about 12.8 images of each digit, and their captions say the same thing",
                 "the best the model can do is to spread each row's probability evenly over the 12.8 same-digit "
                 "captions; what is -log of the share of the right one?"),
          feedback=None if measured is None else f"(Measured: {measured:.3f}; log(128 / 10) = "
                                                 f"{math.log(12.8):.3f}.)")

