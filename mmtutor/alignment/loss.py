r"""CLIP's symmetric contrastive loss, its hard-negative variant (NegCLIP), and batches with several true pairs.

The loss of one batch of ``N`` pairs is a classification twice over: each image must pick its text among the
batch's ``N`` texts, each text its image. The answer is the diagonal (``arange(N)``); ``positives`` says which
other pairs are true as well, so that they are not counted as wrong answers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _inputs


def _other_true_pairs(mask: torch.Tensor) -> torch.Tensor:
    """The true pairs off the diagonal of a bool ``(N, M)`` mask, ``M >= N``: the entries to leave out."""
    n = mask.shape[0]
    if not bool(mask[:, :n].diagonal().all()):
        raise ValueError("positives must be True on the diagonal: pair i (image i, text i) is always true")
    return mask & ~torch.eye(n, mask.shape[1], dtype=torch.bool, device=mask.device)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float, *,
              positives: torch.Tensor | None = None) -> torch.Tensor:
    r"""The symmetric contrastive loss of CLIP; pair ``i`` is (image ``i``, text ``i``).

    $$\hat u_i = \frac{u_i}{\lVert u_i\rVert},\quad \hat t_j = \frac{t_j}{\lVert t_j\rVert},\quad
      L_{ij} = s\, \hat u_i \cdot \hat t_j,\qquad
      \mathcal L = \frac{1}{2}\Big[\mathrm{CE}(L, \mathrm{diag}) + \mathrm{CE}(L^\top, \mathrm{diag})\Big]$$

    Each row of ``L`` is a classification "which text is mine?" among the ``N`` texts, each column
    "which image is mine?". ``logit_scale`` is ``s = 1 / temperature`` (the multiplier, not its log).
    Random embeddings give about ``log N``; with all logits equal it is exactly ``log N``.

    **Several true pairs.** With the diagonal as the only answer, a text that is *also* true of image ``j != i``
    (a caption that fits two scenes, two captions of the same digit) counts as a wrong answer for image ``j``
    and is pushed away from it. ``positives (N, N)`` bool, ``P_ij`` = text ``j`` is true of image ``i`` (the
    diagonal and any others), leaves the other true pairs out of the negatives of their row and of their
    column ("false negative elimination", Huynh et al., 2022):

    $$\mathcal L = \frac{1}{2}\Big[\frac1N\sum_i -\log \frac{e^{L_{ii}}}{e^{L_{ii}} + \sum_{j:\ \neg P_{ij}}
      e^{L_{ij}}} + \frac1N\sum_j -\log \frac{e^{L_{jj}}}{e^{L_{jj}} + \sum_{i:\ \neg P_{ij}} e^{L_{ij}}}\Big]$$

    A true pair is then neither pushed apart nor pulled together; the loss can still reach 0, and with
    ``P = I`` it is CLIP's. (The other common remedy, soft targets spread over every true pair as in SupCon,
    Khosla et al., 2020, or UniCL, Yang et al., 2022, also *pulls* all true pairs together: right when every
    true caption means the same, as the captions of one class do; for captions that say different true
    things about a scene, it pulls "a small red circle" towards every image that has one.)

    ``image_emb (N, d)``, ``text_emb (N, d)``: float; a different ``N`` or ``d``, a ``logit_scale`` that is not a
    positive finite scalar, or ``positives`` that is not a bool ``(N, N)`` mask with a True on its diagonal,
    raise ``TypeError`` / ``ValueError``.
    """
    _inputs.pair(image_emb, text_emb, ("image_emb", "text_emb"))
    if image_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(f"image_emb and text_emb must hold the same number N of pairs, got "
                         f"{image_emb.shape[0]} and {text_emb.shape[0]}")
    s = _inputs.scale(logit_scale)
    n = image_emb.shape[0]
    u = F.normalize(image_emb, dim=-1)  # (N, d)
    t = F.normalize(text_emb, dim=-1)  # (N, d)
    logits = s * u @ t.T  # (N, N), row i: image i against every text
    labels = torch.arange(n, device=u.device)
    if positives is None:
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    other = _other_true_pairs(_inputs.positives(positives, n, n, u.device))  # (N, N), left out
    logits = logits.masked_fill(other, float("-inf"))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def clip_loss_with_negatives(image_emb: torch.Tensor, text_emb: torch.Tensor, negative_text_emb: torch.Tensor,
                             logit_scale: torch.Tensor | float, *, positives: torch.Tensor | None = None
                             ) -> torch.Tensor:
    r"""CLIP's loss with the batch's hard negative captions added to the image-to-text side (NegCLIP).

    $$L = s\, \hat U\, [\hat T;\ \hat T^-]^\top \in \mathbb R^{N \times 2N},$$

    $$\mathcal L = \frac{1}{2}\Big[\mathrm{CE}(L, \mathrm{diag})
      + \mathrm{CE}(L_{:, :N}^\top, \mathrm{diag})\Big]$$

    ``negative_text_emb[i]`` is a near-copy of caption ``i`` that is false for image ``i`` ("a blue circle left
    of a red square" for a red circle left of a blue square). Every image's row scores all ``2N`` texts: the
    ``N`` captions and all ``N`` negatives, so each image must rule out its own hard negative (the one that
    tests it) and the other images' negatives (near-copies of *their* captions, mostly easy for it). The
    negatives have no image of their own, so they do not appear on the text-to-image side (Yuksekgonul et al.,
    2023). ``positives``: as in :func:`clip_loss`, ``(N, N)`` for the captions (the negatives then count as
    false for every image) or ``(N, 2N)`` to mark also a negative that happens to be true of another image
    (left out of that image's row); the text-to-image side uses the first ``N`` columns. Raises as
    :func:`clip_loss`, also when the number of negatives is not ``N``.
    """
    _inputs.pair(image_emb, text_emb, ("image_emb", "text_emb"))
    _inputs.pair(image_emb, negative_text_emb, ("image_emb", "negative_text_emb"))
    n = image_emb.shape[0]
    if text_emb.shape[0] != n or negative_text_emb.shape[0] != n:
        raise ValueError(f"need one text and one negative text per image, got {n} images, {text_emb.shape[0]} "
                         f"texts and {negative_text_emb.shape[0]} negatives")
    s = _inputs.scale(logit_scale)
    u = F.normalize(image_emb, dim=-1)  # (N, d)
    t = F.normalize(torch.cat([text_emb, negative_text_emb]), dim=-1)  # (2N, d)
    logits = s * u @ t.T  # (N, 2N)
    labels = torch.arange(n, device=u.device)
    if positives is None:
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, :n].T, labels))
    wide = isinstance(positives, torch.Tensor) and positives.ndim == 2 and positives.shape[1] == 2 * n
    p = _inputs.positives(positives, n, 2 * n if wide else n, u.device, every_column=n)
    other = _other_true_pairs(p if wide else torch.cat([p, torch.zeros_like(p)], dim=1))  # (N, 2N), left out
    logits = logits.masked_fill(other, float("-inf"))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, :n].T, labels))
