r"""CLIP's symmetric contrastive loss, its hard-negative variant (NegCLIP), and several true pairs per row.

The loss of one batch of ``N`` pairs is a classification twice over: each image must pick its text among the
batch's ``N`` texts, each text its image. The targets are the diagonal (``arange(N)``) unless ``positives``
says which other pairs are true as well.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _inputs


def _soft_targets(mask: torch.Tensor) -> torch.Tensor:
    """Each row of a bool mask as a distribution: uniform over its True entries. ``(R, C) -> (R, C)`` float."""
    m = mask.float()
    return m / m.sum(dim=1, keepdim=True)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float, *,
              positives: torch.Tensor | None = None) -> torch.Tensor:
    r"""The symmetric contrastive loss of CLIP; pair ``i`` is (image ``i``, text ``i``).

    $$\hat u_i = \frac{u_i}{\lVert u_i\rVert},\quad \hat t_j = \frac{t_j}{\lVert t_j\rVert},\quad
      L_{ij} = s\, \hat u_i \cdot \hat t_j,\qquad
      \mathcal L = \frac{1}{2}\Big[\mathrm{CE}(L, \mathrm{diag}) + \mathrm{CE}(L^\top, \mathrm{diag})\Big]$$

    Each row of ``L`` is a classification "which text is mine?" among the ``N`` texts, each column
    "which image is mine?". ``logit_scale`` is ``s = 1 / temperature`` (the multiplier, not its log).
    Random embeddings give about ``log N``; with all logits equal it is exactly ``log N``.

    **Several true pairs.** With the diagonal as the only target, a text that is *also* true of image
    ``j != i`` (two captions that say the same, two images of the same digit) is pushed away from image ``j``.
    ``positives (N, N)`` bool, ``P_ij`` = text ``j`` is true of image ``i`` (the diagonal and any others), turns
    each row and each column into a soft target, uniform over its true pairs:

    $$q_{ij} = \frac{P_{ij}}{\sum_{j'} P_{ij'}},\qquad
      \mathcal L = \frac{1}{2}\Big[\frac1N\sum_i \sum_j -q_{ij} \log \mathrm{softmax}_j(L_{i\cdot})
      + \frac1N\sum_j \sum_i -q'_{ji} \log \mathrm{softmax}_i(L_{\cdot j})\Big],$$

    $q'$ the same for the columns of ``P``. That is the cross-entropy against the true conditional distribution
    when every true pair is equally likely, the supervised contrastive loss of Khosla et al. (2020, its
    ``L_out`` form) and UniCL (Yang et al., 2022); with ``P = I`` it is CLIP's loss. Its minimum is no longer 0
    but the entropy of the targets, $\frac12[\frac1N\sum_i \log n_i + \frac1N\sum_j \log m_j]$ ($n_i$, $m_j$ the
    true pairs of row $i$, column $j$), reached when the true pairs share the probability equally.

    ``image_emb (N, d)``, ``text_emb (N, d)``: float; a different ``N`` or ``d``, a ``logit_scale`` that is not a
    positive finite scalar, or ``positives`` that is not a bool ``(N, N)`` mask with a True in every row and
    column, raise ``TypeError`` / ``ValueError``.
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
    if positives is None:
        labels = torch.arange(n, device=u.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    p = _inputs.positives(positives, n, n, u.device)
    return 0.5 * (F.cross_entropy(logits, _soft_targets(p)) + F.cross_entropy(logits.T, _soft_targets(p.T)))


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
    false for every image) or ``(N, 2N)`` to mark a negative that happens to be true of another image; the
    text-to-image side uses its first ``N`` columns. Raises as :func:`clip_loss`, also when the number of
    negatives is not ``N``.
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
    if positives is None:
        labels = torch.arange(n, device=u.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, :n].T, labels))
    wide = positives.shape[-1] == 2 * n if isinstance(positives, torch.Tensor) and positives.ndim == 2 else False
    p = _inputs.positives(positives, n, 2 * n if wide else n, u.device, every_column=n)
    if not wide:
        p = torch.cat([p, torch.zeros_like(p)], dim=1)  # (N, 2N): no negative is true of any image
    i2t = F.cross_entropy(logits, _soft_targets(p))  # rows over all 2N texts
    t2i = F.cross_entropy(logits[:, :n].T, _soft_targets(p[:, :n].T))  # columns: the N captions only
    return 0.5 * (i2t + t2i)
