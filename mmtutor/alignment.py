r"""Chapter 7: modality mapping $\vec v = M(\vec x)$ and contrastive alignment (CLIP).

Each modality gets its own encoder (:mod:`mmtutor.encoders`); training pulls the unit vectors of
matching pairs together and pushes the others apart, so that chapter 6's cosine search finds images
from sentences, digits from prompts, and (through text as a hub) images from sounds.

* :func:`multimodal_mapping`: the original write-up's ``M(x) = model(x)``, with its inputs checked;
* :func:`clip_loss`: the symmetric InfoNCE loss of CLIP (Radford et al., 2021);
  :func:`clip_loss_with_negatives` adds hard negative captions to the image-to-text side (NegCLIP);
* :class:`LogitScale`: the learnable temperature, stored as a log and clamped as CLIP does;
* :class:`ContrastiveModel`: two towers and a temperature;
* metrics: :func:`recall_at_k`, :func:`target_ranks`, :func:`evaluate_retrieval` (with
  :func:`mmtutor.similarity.topk_search`), :func:`label_recall_at_k`, :func:`ensemble_prompts`,
  :func:`zero_shot_classify`, :func:`hard_negative_accuracy`, :func:`modality_gap`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import float_tensor, instance, int_tensor, number, positive_int
from .similarity import topk_search


def multimodal_mapping(x: Any, model: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    r"""$\vec v = M(\vec x)$: map data of one modality into the shared space with its ``model``.

    As in the original write-up this is ``model(x)``: the point is that images, texts and sounds each have their
    own ``M`` and all land in the same space. ``x`` must be a tensor with a leading batch dimension and
    ``model`` callable (else ``TypeError`` / ``ValueError``); the result must be a float tensor ``(N, d)`` with
    one row per input (else ``TypeError`` / ``ValueError``).
    """
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module, a function), got {type(model).__name__}")
    if instance("x", x, torch.Tensor, "a torch.Tensor (a batch of inputs)").ndim == 0:
        raise ValueError("x must be a batch with a leading dimension N, got a 0-d tensor")
    return float_tensor("model(x)", model(x), "(N, d)", N=x.shape[0])


def _check_embeddings(name: str, x: object) -> torch.Tensor:
    if not float_tensor(name, x, "(N, d)").numel():
        raise ValueError(f"{name} must have shape (N, d) with N, d >= 1, got {tuple(x.shape)}")
    return x


def _check_scale(logit_scale: object) -> torch.Tensor | float:
    if isinstance(logit_scale, torch.Tensor):
        if logit_scale.numel() != 1:
            raise ValueError(f"logit_scale must be a scalar, got shape {tuple(logit_scale.shape)}")
        value = float(logit_scale.detach())
    elif isinstance(logit_scale, int | float) and not isinstance(logit_scale, bool):
        value = float(logit_scale)
    else:
        raise TypeError(f"logit_scale must be a number or a scalar tensor, got {type(logit_scale).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"logit_scale is the multiplier 1/temperature and must be > 0 and finite, got {value}")
    return logit_scale.reshape(()) if isinstance(logit_scale, torch.Tensor) else logit_scale


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    _check_embeddings(names[0], a)
    _check_embeddings(names[1], b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same dimension d, got {a.shape[1]} and {b.shape[1]}")


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    r"""The symmetric contrastive loss of CLIP; pair ``i`` is (image ``i``, text ``i``).

    $$\hat u_i = \frac{u_i}{\lVert u_i\rVert},\quad \hat t_j = \frac{t_j}{\lVert t_j\rVert},\quad
      L_{ij} = s\, \hat u_i \cdot \hat t_j,\qquad
      \mathcal L = \frac{1}{2}\Big[\mathrm{CE}(L, \mathrm{diag}) + \mathrm{CE}(L^\top, \mathrm{diag})\Big]$$

    Each row of ``L`` is a classification "which text is mine?" among the ``N`` texts, each column
    "which image is mine?". ``logit_scale`` is ``s = 1 / temperature`` (the multiplier, not its log).
    Random embeddings give about ``log N``; with all logits equal it is exactly ``log N``. ``image_emb (N, d)``,
    ``text_emb (N, d)``: float; a different ``N`` or ``d``, or a ``logit_scale`` that is not a positive finite
    scalar, raise ``TypeError`` / ``ValueError``.
    """
    _check_pair(image_emb, text_emb, ("image_emb", "text_emb"))
    if image_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(f"image_emb and text_emb must hold the same number N of pairs, got "
                         f"{image_emb.shape[0]} and {text_emb.shape[0]}")
    s = _check_scale(logit_scale)
    u = F.normalize(image_emb, dim=-1)  # (N, d)
    t = F.normalize(text_emb, dim=-1)  # (N, d)
    logits = s * u @ t.T  # (N, N), row i: image i against every text
    labels = torch.arange(u.shape[0], device=u.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def clip_loss_with_negatives(image_emb: torch.Tensor, text_emb: torch.Tensor, negative_text_emb: torch.Tensor,
                             logit_scale: torch.Tensor | float) -> torch.Tensor:
    r"""CLIP's loss with one hard negative caption per image added to the image-to-text side (NegCLIP).

    $$L = s\, \hat U\, [\hat T;\ \hat T^-]^\top \in \mathbb R^{N \times 2N},$$

    $$\mathcal L = \frac{1}{2}\Big[\mathrm{CE}(L, \mathrm{diag})
      + \mathrm{CE}(L_{:, :N}^\top, \mathrm{diag})\Big]$$

    Each image must now also prefer its caption to a near-copy that is false for it ("a blue
    circle left of a red square" for a red circle left of a blue square); the negatives have no
    image of their own, so they do not appear on the text-to-image side (Yuksekgonul et al., 2023).
    Raises as :func:`clip_loss`, also when the number of negatives is not ``N``.
    """
    _check_pair(image_emb, text_emb, ("image_emb", "text_emb"))
    _check_pair(image_emb, negative_text_emb, ("image_emb", "negative_text_emb"))
    n = image_emb.shape[0]
    if text_emb.shape[0] != n or negative_text_emb.shape[0] != n:
        raise ValueError(f"need one text and one negative text per image, got {n} images, {text_emb.shape[0]} "
                         f"texts and {negative_text_emb.shape[0]} negatives")
    s = _check_scale(logit_scale)
    u = F.normalize(image_emb, dim=-1)  # (N, d)
    t = F.normalize(torch.cat([text_emb, negative_text_emb]), dim=-1)  # (2N, d)
    logits = s * u @ t.T  # (N, 2N)
    labels = torch.arange(n, device=u.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, :n].T, labels))


class LogitScale(nn.Module):
    r"""The learnable multiplier ``s = 1 / temperature``, stored as ``log s`` and clamped as in CLIP.

    $$s = \exp\big(\mathrm{clamp}(\theta,\ 0,\ \log s_{\max})\big),\qquad \theta_0 = \log(1 / 0.07)$$

    Learning ``log s`` keeps ``s`` positive and makes its steps relative. CLIP clamps the parameter
    after each step so that ``s <= 100``; clamping in ``forward`` gives the same scale and needs no
    change to the training loop. ``forward() -> s`` (a 0-d tensor). A ``max_scale`` below 1, or an
    ``init_temperature`` outside ``[1 / max_scale, 1]``, raises ``ValueError``.
    """

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        number("init_temperature", init_temperature, 1.0 / number("max_scale", max_scale, 1.0), 1.0)
        self.max_log = math.log(max_scale)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(0.0, self.max_log).exp()


class ContrastiveModel(nn.Module):
    r"""Two towers and a temperature: ``x_encoder`` for images or sounds, ``text_encoder`` for words.

    ``forward(x, ids) -> (v_x (N, d), v_t (N, d), s)`` with unit-length rows. With
    ``train_text=False`` the text tower is frozen (its parameters stop needing gradients), which is
    how a new modality is bound to an existing text space (LiT, ImageBind). A tower that is not an
    ``nn.Module`` raises ``TypeError``.
    """

    def __init__(self, x_encoder: nn.Module, text_encoder: nn.Module, init_temperature: float = 0.07,
                 max_scale: float = 100.0, train_text: bool = True) -> None:
        super().__init__()
        self.x_encoder = instance("x_encoder", x_encoder, nn.Module, "an nn.Module")
        self.text_encoder = instance("text_encoder", text_encoder, nn.Module, "an nn.Module")
        self.logit_scale = LogitScale(init_temperature, max_scale)
        if not train_text:
            text_encoder.requires_grad_(False)

    def embed_x(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(multimodal_mapping(x, self.x_encoder), dim=-1)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(multimodal_mapping(ids, self.text_encoder), dim=-1)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.embed_x(x), self.embed_text(ids), self.logit_scale()


# ----------------------------------------------------------------------------- measuring the alignment


def _check_targets(targets: torch.Tensor | None, q: int, g: int, device: torch.device) -> torch.Tensor:
    if targets is None:
        if q > g:
            raise ValueError(f"without targets query i matches gallery item i, so need Q <= G, got Q={q}, G={g}")
        return torch.arange(q, device=device)
    return int_tensor("targets", targets, "(Q,)", Q=q, low=0, high=g - 1).to(device)


def recall_at_k(similarity: torch.Tensor, k: int, targets: torch.Tensor | None = None) -> float:
    r"""Fraction of queries (rows) whose target (``targets[i]``, default ``i``) is among their top ``k``.

    $$\mathrm{R@}k = \frac{1}{Q}\sum_i \big[\#\{j : S_{ij} > S_{i,t_i}\} < k\big]$$

    Ties are broken by the smaller index, as in :func:`mmtutor.similarity.topk_search`. ``similarity (Q, G)``
    float; ``k`` outside ``[1, G]`` or targets outside ``[0, G)`` raise ``TypeError`` / ``ValueError``.
    """
    _check_embeddings("similarity", similarity)
    q, g = similarity.shape
    if positive_int("k", k) > g:
        raise ValueError(f"k must be <= G={g} (the gallery size), got {k}")
    t = _check_targets(targets, q, g, similarity.device)
    s_t = similarity.gather(1, t[:, None])  # (Q, 1) score of each target
    before = (similarity > s_t) | ((similarity == s_t) & (torch.arange(g, device=t.device) < t[:, None]))
    return (before.sum(dim=1) < k).float().mean().item()


def target_ranks(indices: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each target in a full ranking ``indices (Q, G)`` (e.g. from ``topk_search``); a
    target missing from its row raises ``ValueError``."""
    int_tensor("indices", indices, "(Q, G)")
    t = _check_targets(targets, indices.shape[0], indices.shape[1], indices.device)
    hit = indices == t[:, None]  # (Q, G), one True per row
    if not bool(hit.any(dim=1).all()):
        raise ValueError("some target is missing from its row of indices: pass a full ranking (k = G)")
    return hit.float().argmax(dim=1) + 1


def evaluate_retrieval(queries: torch.Tensor, gallery: torch.Tensor, targets: torch.Tensor | None = None,
                       ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Rank the whole gallery for every query with chapter 6's exact cosine search; report recall@k
    for each ``k`` in ``ks`` and the median rank (1 = always first). Query ``i`` matches gallery item
    ``targets[i]`` (default ``i``). Embeddings or targets that do not fit raise ``TypeError`` / ``ValueError``."""
    _check_pair(queries, gallery, ("queries", "gallery"))
    _, indices = topk_search(queries, gallery, gallery.shape[0])  # (Q, G): a full ranking
    ranks = target_ranks(indices, _check_targets(targets, queries.shape[0], gallery.shape[0], indices.device))
    report = {f"R@{k}": (ranks <= k).float().mean().item() for k in ks}
    report["median rank"] = ranks.float().median().item()
    return report


def label_recall_at_k(queries: torch.Tensor, gallery: torch.Tensor, query_labels: torch.Tensor,
                      gallery_labels: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall when any gallery item of the query's class counts: the fraction of queries with at least one
    item of their label among the top ``k`` (chapter 6's search). Chance for ``k = 1`` is the share of
    the gallery with the query's label. Embeddings or labels that do not fit raise ``TypeError`` / ``ValueError``."""
    _check_pair(queries, gallery, ("queries", "gallery"))
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
    _check_pair(x_emb, class_emb, ("x_emb", "class_emb"))
    return (F.normalize(x_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T).argmax(dim=1)


def hard_negative_accuracy(x_emb: torch.Tensor, positive_emb: torch.Tensor, negative_emb: torch.Tensor) -> float:
    """How often an image is closer (cosine) to its true caption than to its hard negative; ties count
    half, so an encoder that cannot tell the two captions apart scores exactly 0.5. Three ``(N, d)`` float
    tensors, else ``TypeError`` / ``ValueError``."""
    _check_pair(x_emb, positive_emb, ("x_emb", "positive_emb"))
    _check_pair(x_emb, negative_emb, ("x_emb", "negative_emb"))
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
    _check_pair(a, b, ("a", "b"))
    return (F.normalize(a, dim=-1).mean(dim=0) - F.normalize(b, dim=-1).mean(dim=0)).norm().item()
