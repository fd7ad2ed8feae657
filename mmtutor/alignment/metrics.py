r"""Measuring an alignment: cross-modal retrieval, zero-shot classification, hard negatives, the modality gap.

Retrieval ranks a gallery for each query with chapter 6's exact search; a query may have one right answer
(``targets``) or several (``positives``, as in COCO, where each image has five true captions).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._checks import float_tensor, int_tensor, positive_int
from ..similarity import topk_search
from . import _inputs


def _best_positive(similarity: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """For each row, the true item ranked first: the highest-scoring positive, the smaller index on a tie."""
    best = similarity.masked_fill(~positives, float("-inf")).amax(dim=1, keepdim=True)  # (Q, 1)
    return (positives & (similarity == best)).float().argmax(dim=1)  # (Q,), argmax takes the first


def recall_at_k(similarity: torch.Tensor, k: int, targets: torch.Tensor | None = None, *,
                positives: torch.Tensor | None = None) -> float:
    r"""Fraction of queries (rows) whose right answer is among their top ``k``.

    $$\mathrm{R@}k = \frac{1}{Q}\sum_i \big[\#\{j : S_{ij} > S_{i,t_i}\} < k\big]$$

    One right answer per query: ``targets[i]`` (default ``i``). Several: ``positives (Q, G)`` bool, ``P_ij`` =
    item ``j`` is a right answer for query ``i``; a query counts as found when *any* of its right answers is
    in its top ``k`` (COCO's rule for image-to-text retrieval, five true captions per image), which is the
    formula above with $t_i$ the right answer ranked first. Counting only one of them instead would call the
    others, ranked above it, mistakes, and undercount. Ties are broken by the smaller index, as in
    :func:`mmtutor.similarity.topk_search`. ``similarity (Q, G)`` float; ``k`` outside ``[1, G]``, targets
    outside ``[0, G)``, both ``targets`` and ``positives``, or ``positives`` not a bool ``(Q, G)`` mask with a
    True in every row raise ``TypeError`` / ``ValueError``.
    """
    _inputs.embeddings("similarity", similarity)
    q, g = similarity.shape
    if positive_int("k", k) > g:
        raise ValueError(f"k must be <= G={g} (the gallery size), got {k}")
    if positives is not None:
        if targets is not None:
            raise ValueError("pass targets (one right answer per query) or positives (several), not both")
        t = _best_positive(similarity, _inputs.positives(positives, q, g, similarity.device, every_column=0))
    else:
        t = _inputs.targets(targets, q, g, similarity.device)
    s_t = similarity.gather(1, t[:, None])  # (Q, 1) score of each target
    before = (similarity > s_t) | ((similarity == s_t) & (torch.arange(g, device=t.device) < t[:, None]))
    return (before.sum(dim=1) < k).float().mean().item()


def target_ranks(indices: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each target in a full ranking ``indices (Q, G)`` (e.g. from ``topk_search``); a
    target missing from its row raises ``ValueError``."""
    int_tensor("indices", indices, "(Q, G)")
    t = _inputs.targets(targets, indices.shape[0], indices.shape[1], indices.device)
    hit = indices == t[:, None]  # (Q, G), one True per row
    if not bool(hit.any(dim=1).all()):
        raise ValueError("some target is missing from its row of indices: pass a full ranking (k = G)")
    return hit.float().argmax(dim=1) + 1


def evaluate_retrieval(queries: torch.Tensor, gallery: torch.Tensor, targets: torch.Tensor | None = None,
                       ks: Sequence[int] = (1, 5, 10), *, positives: torch.Tensor | None = None) -> dict[str, float]:
    """Rank the whole gallery for every query with chapter 6's exact cosine search; report recall@k
    for each ``k`` in ``ks`` and the median rank (1 = always first). Query ``i`` matches gallery item
    ``targets[i]`` (default ``i``), or, with ``positives (Q, G)`` bool, any item ``j`` with ``positives[i, j]``
    (the rank is that of the first right answer in the ranking, as in :func:`recall_at_k`). Embeddings,
    targets or positives that do not fit, or both of the last two, raise ``TypeError`` / ``ValueError``."""
    _inputs.pair(queries, gallery, ("queries", "gallery"))
    _, indices = topk_search(queries, gallery, gallery.shape[0])  # (Q, G): a full ranking
    q, g = queries.shape[0], gallery.shape[0]
    if positives is not None:
        if targets is not None:
            raise ValueError("pass targets (one right answer per query) or positives (several), not both")
        p = _inputs.positives(positives.to(indices.device), q, g, indices.device, every_column=0)
        ranks = p.gather(1, indices).float().argmax(dim=1) + 1  # (Q,) position of the first right answer
    else:
        ranks = target_ranks(indices, _inputs.targets(targets, q, g, indices.device))
    report = {f"R@{k}": (ranks <= k).float().mean().item() for k in ks}
    report["median rank"] = ranks.float().median().item()
    return report


def label_recall_at_k(queries: torch.Tensor, gallery: torch.Tensor, query_labels: torch.Tensor,
                      gallery_labels: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall when any gallery item of the query's class counts: the fraction of queries with at least one
    item of their label among the top ``k`` (chapter 6's search). Chance for ``k = 1`` is the share of
    the gallery with the query's label. Embeddings or labels that do not fit raise ``TypeError`` / ``ValueError``."""
    _inputs.pair(queries, gallery, ("queries", "gallery"))
    int_tensor("query_labels", query_labels, "(Q,)", Q=queries.shape[0])
    int_tensor("gallery_labels", gallery_labels, "(G,)", G=gallery.shape[0])
    _, indices = topk_search(queries, gallery, max(ks))  # (Q, k)
    same = gallery_labels.to(indices.device)[indices] == query_labels.to(indices.device)[:, None]  # (Q, k)
    return {f"R@{k}": same[:, :k].any(dim=1).float().mean().item() for k in ks}


def ensemble_prompts(prompt_emb: torch.Tensor) -> torch.Tensor:
    r"""One embedding per class from several prompts: ``(C, P, d) -> (C, d)``.

    $$\vec c_k = \mathrm{normalise}\Big(\frac{1}{P} \sum_p
      \frac{\vec t_{kp}}{\lVert \vec t_{kp} \rVert}\Big)$$

    Anything but a float ``(C, P, d)`` tensor raises ``TypeError`` / ``ValueError``.
    """
    float_tensor("prompt_emb", prompt_emb, "(C, P, d)")
    return F.normalize(F.normalize(prompt_emb, dim=-1).mean(dim=1), dim=-1)


def zero_shot_classify(x_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    r"""Each input's class: the class whose text embedding is the most cosine-similar,
    $\hat y_i = \arg\max_k \cos(\vec x_i, \vec c_k)$. ``x_emb (N, d)``, ``class_emb (C, d)`` -> ``(N,)`` long;
    embeddings that do not fit raise ``TypeError`` / ``ValueError``."""
    _inputs.pair(x_emb, class_emb, ("x_emb", "class_emb"))
    return (F.normalize(x_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T).argmax(dim=1)


def hard_negative_accuracy(x_emb: torch.Tensor, positive_emb: torch.Tensor, negative_emb: torch.Tensor) -> float:
    """How often an image is closer (cosine) to its true caption than to its hard negative; ties count
    half, so an encoder that cannot tell the two captions apart scores exactly 0.5. Three ``(N, d)`` float
    tensors, else ``TypeError`` / ``ValueError``."""
    _inputs.pair(x_emb, positive_emb, ("x_emb", "positive_emb"))
    _inputs.pair(x_emb, negative_emb, ("x_emb", "negative_emb"))
    if not x_emb.shape[0] == positive_emb.shape[0] == negative_emb.shape[0]:
        raise ValueError("x_emb, positive_emb and negative_emb need the same number of rows")
    u = F.normalize(x_emb, dim=-1)
    pos = (u * F.normalize(positive_emb, dim=-1)).sum(dim=1)  # (N,)
    neg = (u * F.normalize(negative_emb, dim=-1)).sum(dim=1)
    return ((pos > neg).float() + 0.5 * (pos == neg).float()).mean().item()


def modality_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    r"""Distance between the centroids of two modalities on the unit sphere (Liang et al., 2022).

    $$\Delta = \Big\lVert \frac{1}{N}\sum_i \hat a_i - \frac{1}{M}\sum_j \hat b_j \Big\rVert_2$$

    ``a (N, d)``, ``b (M, d)`` float, else ``TypeError`` / ``ValueError``.
    """
    _inputs.pair(a, b, ("a", "b"))
    return (F.normalize(a, dim=-1).mean(dim=0) - F.normalize(b, dim=-1).mean(dim=0)).norm().item()
