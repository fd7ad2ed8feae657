r"""Recommendation: a two-tower model is chapter 7's contrastive model with users and items as the two towers.

A **user tower** maps what a reader clicked to a vector $\vec u$, an **item tower** maps a post to $\vec v$; both
are trained so that a reader's next click has the largest cosine among the items of the batch, with CLIP's loss
and in-batch negatives (Covington et al. 2016; Yi et al. 2019). Recommending is then chapter 6's search:
the top-$k$ items for $\vec u$, minus what the reader has already seen.

* :class:`ItemTower`: $\vec v_i = F_i + Q c_i$: a learned vector per item plus a projection of its content;
* :class:`UserTower`: $\vec u = \frac{1}{|H|}\sum_{j \in H} \vec v_j$ over the history $H$, through the item tower;
* :func:`sampled_softmax_loss`: one side of CLIP's loss, with the sampling-bias (log q) correction of Yi et al.;
* :func:`history_pairs`: (history without one click, that click) for every click, the training pairs;
* :func:`pad_histories`, :func:`seen_matrix`, :func:`content_profiles`, :func:`popularity`: the inputs and baselines;
* :func:`top_unseen`, :func:`recommend`: the top-$k$ unseen items by a score matrix or by search;
* :func:`held_out_relevance`: which recommendations are among a reader's held-out clicks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import float_tensor, positive_int
from ..similarity import topk_search
from .retrieval import drop_seen

PAD = -1  # padding in a history


def _check_lists(histories: object, n_items: int, name: str = "histories") -> list[list[int]]:
    if not isinstance(histories, Sequence) or any(not isinstance(h, Sequence) for h in histories):
        raise TypeError(f"{name} must be a list of lists of item ids")
    bad = [i for h in histories for i in h if not (isinstance(i, int) and 0 <= i < n_items)]
    if bad:
        raise ValueError(f"{name} hold item ids outside [0, {n_items}): {bad[:3]}")
    return [list(h) for h in histories]


def pad_histories(histories: Sequence[Sequence[int]], n_items: int, max_len: int | None = None) -> Tensor:
    """``(U, L)`` long: each history's last ``max_len`` items (default: the longest), padded with ``PAD = -1``."""
    histories = _check_lists(histories, n_items)
    L = max_len or max(1, max(map(len, histories), default=1))
    out = torch.full((len(histories), L), PAD, dtype=torch.long)
    for u, h in enumerate(histories):
        h = h[-L:]
        if h:
            out[u, :len(h)] = torch.tensor(h)
    return out


def seen_matrix(histories: Sequence[Sequence[int]], n_items: int) -> Tensor:
    """``(U, N)`` bool: ``True`` where the reader has clicked the item."""
    histories = _check_lists(histories, n_items)
    seen = torch.zeros(len(histories), n_items, dtype=torch.bool)
    for u, h in enumerate(histories):
        seen[u, h] = True
    return seen


def popularity(histories: Sequence[Sequence[int]], n_items: int) -> Tensor:
    """``(N,)`` float: how often each item was clicked in ``histories``, the popularity baseline's score."""
    histories = _check_lists(histories, n_items)
    return torch.bincount(torch.tensor([i for h in histories for i in h], dtype=torch.long),
                          minlength=n_items).double()


def content_profiles(histories: Sequence[Sequence[int]], item_vectors: Tensor) -> Tensor:
    r"""Content-based user vectors ``(U, D)``: $\vec u = \frac{1}{|H|}\sum_{j \in H} \hat c_j$, unit length."""
    C = float_tensor("item_vectors", item_vectors, "(N, D)")
    histories = _check_lists(histories, C.shape[0])
    if any(not h for h in histories):
        raise ValueError("every reader needs at least one click for a content profile")
    unit = F.normalize(C, dim=1)
    return F.normalize(torch.stack([unit[h].mean(0) for h in histories]), dim=1)


def history_pairs(histories: Sequence[Sequence[int]], n_items: int, max_len: int) -> tuple[Tensor, Tensor]:
    """Training pairs for the towers: for every click ``j`` of every history, ``(the history without j, j)``.

    Returns ``(hist (P, max_len), target (P,))``; a history of one click gives no pair (nothing to predict from).
    """
    histories = _check_lists(histories, n_items)
    rest, target = [], []
    for h in histories:
        for j, item in enumerate(h):
            if len(h) > 1:
                rest.append(h[:j] + h[j + 1:])
                target.append(item)
    return pad_histories(rest, n_items, max_len), torch.tensor(target, dtype=torch.long)


class ItemTower(nn.Module):
    r"""$\vec v_i = F_i + Q c_i$: a learned vector per item, plus a projection of its content features if given.
    ``forward(items (B,))`` -> ``(B, d)``."""

    def __init__(self, n_items: int, d: int = 32, content: Tensor | None = None) -> None:
        super().__init__()
        self.n_items, self.d = positive_int("n_items", n_items), positive_int("d", d)
        self.F = nn.Embedding(n_items, d)
        if content is not None:
            float_tensor("content", content, "(N, C)", N=n_items)
            self.register_buffer("content", content.clone())
            self.Q = nn.Linear(content.shape[1], d, bias=False)
        else:
            self.content, self.Q = None, None

    def forward(self, items: Tensor) -> Tensor:
        if not isinstance(items, Tensor) or items.dtype != torch.long or items.ndim != 1:
            raise TypeError(f"items must be a long tensor (B,) of item ids, got {getattr(items, 'dtype', items)}")
        v = self.F(items)  # (B, d)
        return v if self.Q is None else v + self.Q(self.content[items])


class UserTower(nn.Module):
    r"""A reader is the mean of the items they clicked, seen through the item tower:
    $\vec u = \frac{1}{|H|}\sum_{j \in H} \vec v_j$, then (if ``hidden``) plus a small MLP of it, a residual.

    Sharing the item tower (YouTube's recommender feeds the average of the watched videos' embeddings to its user
    network, Covington et al. 2016) means a click teaches both towers at once: with a few thousand clicks a user
    tower of its own would mostly memorise. ``forward(history (B, L))``, ``PAD = -1`` after the real items
    -> ``(B, d)``.
    """

    def __init__(self, items: ItemTower, hidden: int = 0) -> None:
        super().__init__()
        if not isinstance(items, ItemTower):
            raise TypeError(f"items must be the ItemTower to share, got {type(items).__name__}")
        self.items = items
        d = items.d
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, d)) if hidden else None

    def forward(self, history: Tensor) -> Tensor:
        if not isinstance(history, Tensor) or history.dtype != torch.long or history.ndim != 2:
            raise TypeError(f"history must be a long tensor (B, L) of item ids, got "
                            f"{getattr(history, 'dtype', type(history).__name__)}")
        real = history != PAD  # (B, L)
        if not bool(real.any(1).all()):
            raise ValueError("every history needs at least one item")
        v = self.items(history.clamp(min=0).reshape(-1)).reshape(*history.shape, -1)  # (B, L, d)
        mean = (v * real.unsqueeze(-1)).sum(1) / real.sum(1, keepdim=True)  # (B, d), padding left out
        return mean if self.mlp is None else mean + self.mlp(mean)


def sampled_softmax_loss(user_emb: Tensor, item_emb: Tensor, logit_scale: Tensor | float,
                         log_q: Tensor | None = None) -> Tensor:
    r"""In-batch softmax over the batch's items, with Yi et al.'s (2019) sampling-bias correction if ``log_q``:

    $$L_{bj} = s\,\hat u_b \cdot \hat v_j - \log q_j, \qquad \mathcal L = \mathrm{CE}(L, \mathrm{diag})$$

    Row ``b`` asks "which of the batch's items did reader ``b`` click?". Without ``log_q`` this is the first half of
    CLIP's loss (:func:`mmtutor.alignment.clip_loss` averages it with the transposed question). The other items of
    a batch are its negatives, and an item appears in batches in proportion to its popularity $q_j$, so popular
    items are pushed down more often than rare ones and the scores learn $\log p(j \mid u) - \log q_j$, how much
    *more* than average the reader likes it. Subtracting $\log q_j$ from the logits makes the softmax's
    shortfall the model's to explain, so $s\,\hat u \cdot \hat v$ learns $\log p(j \mid u)$ itself.
    ``user_emb (B, d)``, ``item_emb (B, d)`` (pair ``b`` is row ``b`` of both), ``log_q (B,)`` of the batch's items.
    """
    u, v = float_tensor("user_emb", user_emb, "(B, d)"), float_tensor("item_emb", item_emb, "(B, d)")
    if u.shape != v.shape:
        raise ValueError(f"user_emb and item_emb must pair row by row, got {tuple(u.shape)} and {tuple(v.shape)}")
    logits = logit_scale * F.normalize(u, dim=1) @ F.normalize(v, dim=1).T  # (B, B)
    if log_q is not None:
        float_tensor("log_q", log_q, "(B,)", B=u.shape[0])
        logits = logits - log_q.to(logits.dtype)[None, :]  # column j: the j-th item of the batch
    return F.cross_entropy(logits, torch.arange(len(u), device=u.device))


def top_unseen(scores: Tensor, seen: Tensor, k: int) -> Tensor:
    """The ``k`` best-scoring unseen items of each row of ``scores (U, N)`` (ties to the smaller index): ``(U, k)``."""
    scores = float_tensor("scores", scores, "(U, N)")
    if seen.shape != scores.shape or seen.dtype != torch.bool:
        raise ValueError(f"seen must be a bool tensor of the shape of scores {tuple(scores.shape)}")
    masked = scores.masked_fill(seen, float("-inf"))
    return torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :positive_int("k", k)]


def recommend(user_vectors: Tensor, item_vectors: Tensor, seen: Tensor, k: int = 10) -> Tensor:
    """Top-``k`` unseen items by cosine, with chapter 6's exact search: ``(U, k)`` item ids."""
    k = positive_int("k", k)
    extra = int(seen.sum(1).max()) if seen.numel() else 0
    _, found = topk_search(user_vectors, item_vectors, min(item_vectors.shape[0], k + extra))  # (U, k + extra)
    return drop_seen(found, seen, k)


def held_out_relevance(recommended: Tensor, held_out: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """``(rel (U, k) bool, n_relevant (U,))``: which recommendations the reader clicked later, and how many
    later clicks there were."""
    if recommended.ndim != 2 or len(held_out) != recommended.shape[0]:
        raise ValueError(f"need one list of held-out clicks per row of recommended {tuple(recommended.shape)}")
    rel = torch.stack([torch.isin(recommended[u], torch.tensor(list(h), dtype=torch.long))
                       for u, h in enumerate(held_out)])  # (U, k)
    return rel, torch.tensor([len(set(h)) for h in held_out])
