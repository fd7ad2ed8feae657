r"""Recommendation: a two-tower model is chapter 7's contrastive model with users and items as the two towers.

A **user tower** maps what a reader clicked to a vector $\vec u$, an **item tower** maps a post to $\vec v$; both
are trained so that a reader's next click has the largest cosine among the items of the batch, with CLIP's loss
and in-batch negatives (Covington et al. 2016; Yi et al. 2019). Recommending is then chapter 6's search:
the top-$k$ items for $\vec u$, minus what the reader has already seen.

* :class:`UserTower`: $\vec u = \mathrm{MLP}\big(\frac{1}{|H|}\sum_{j \in H} [E_j;\ P c_j]\big)$ over the history $H$;
* :class:`ItemTower`: $\vec v_i = F_i + Q c_i$: a learned vector per item plus a projection of its content;
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


class UserTower(nn.Module):
    r"""$\vec u = W_2\, \mathrm{ReLU}(W_1 \bar h + b_1) + b_2$ with $\bar h$ the mean over the clicked items of
    $[E_j;\ P c_j]$: a learned vector per item and, if ``content`` is given, a projection of its features.

    ``forward(history (B, L))`` with ``PAD = -1`` after the real items -> ``(B, d)``.
    """

    def __init__(self, n_items: int, d: int = 32, content: Tensor | None = None, hidden: int = 64) -> None:
        super().__init__()
        self.n_items, d, hidden = positive_int("n_items", n_items), positive_int("d", d), positive_int("hidden", hidden)
        self.E = nn.Embedding(n_items + 1, d, padding_idx=n_items)  # row n_items: the padding, kept at zero
        width = d
        if content is not None:
            float_tensor("content", content, "(N, C)", N=n_items)
            self.register_buffer("content", torch.cat([content, content.new_zeros(1, content.shape[1])]))  # (N+1, C)
            self.P = nn.Linear(content.shape[1], d, bias=False)
            width += d
        else:
            self.content, self.P = None, None
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, d))

    def forward(self, history: Tensor) -> Tensor:
        if not isinstance(history, Tensor) or history.dtype != torch.long or history.ndim != 2:
            raise TypeError(f"history must be a long tensor (B, L) of item ids, got "
                            f"{getattr(history, 'dtype', type(history).__name__)}")
        real = history != PAD  # (B, L)
        if not bool(real.any(1).all()):
            raise ValueError("every history needs at least one item")
        ids = torch.where(real, history, self.n_items)  # padding -> the zero row
        x = self.E(ids)  # (B, L, d)
        if self.P is not None:
            x = torch.cat([x, self.P(self.content[ids])], dim=-1)  # (B, L, 2d)
        mean = x.sum(1) / real.sum(1, keepdim=True)  # (B, width); padding rows are zero
        return self.mlp(mean)  # (B, d)


class ItemTower(nn.Module):
    r"""$\vec v_i = F_i + Q c_i$: a learned vector per item, plus a projection of its content features if given.
    ``forward(items (B,))`` -> ``(B, d)``."""

    def __init__(self, n_items: int, d: int = 32, content: Tensor | None = None) -> None:
        super().__init__()
        self.n_items = positive_int("n_items", n_items)
        self.F = nn.Embedding(n_items, positive_int("d", d))
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
