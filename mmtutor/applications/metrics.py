r"""The metrics of retrieval and recommendation, and honest error bars.

A ranking is scored from its **relevance matrix** ``rel (Q, K)``: ``rel[q, i]`` says whether (or how much) the
item at rank ``i + 1`` of query ``q`` is relevant. Relevance is looked up from the returned indices with
:func:`relevance`; an index of -1 (an approximate index that found fewer than ``K`` items) is never relevant.

* :func:`average_precision`: $\mathrm{AP} = \frac{1}{R}\sum_{i} P@i \cdot \mathrm{rel}_i$, its mean over queries is
  MAP;
* :func:`ndcg_at_k`: $\mathrm{DCG@}k = \sum_{i \le k} g_i / \log_2(i + 1)$ divided by the best possible DCG@k;
* :func:`retrieval_recall`, :func:`hit_rate`, :func:`precision_at_k`: shares of relevant items in the top k;
* :func:`bootstrap_ci`, :func:`paired_bootstrap_ci`: percentile bootstrap intervals of a mean and of a mean
  difference (two methods on the same queries), for test sets too small to trust one number.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import number, positive_int


def _check_rel(rel: object, name: str = "rel") -> Tensor:
    if not isinstance(rel, Tensor) or rel.ndim != 2:
        raise ValueError(f"{name} must be a tensor (Q, K) of relevance in rank order, got "
                         f"{tuple(rel.shape) if isinstance(rel, Tensor) else type(rel).__name__}")
    return rel.double()


def _check_counts(n_relevant: object, q: int) -> Tensor:
    if not isinstance(n_relevant, Tensor) or tuple(n_relevant.shape) != (q,):
        raise ValueError(f"n_relevant must be a tensor ({q},) with the number of relevant items of each query, got "
                         f"{tuple(n_relevant.shape) if isinstance(n_relevant, Tensor) else type(n_relevant).__name__}")
    return n_relevant.double()


def relevance(indices: Tensor, query_labels: Tensor, item_labels: Tensor) -> Tensor:
    """``rel (Q, K)`` bool: the item at ``indices[q, i]`` has the label of query ``q`` (index -1: never)."""
    if not isinstance(indices, Tensor) or indices.ndim != 2 or indices.dtype != torch.long:
        raise ValueError(f"indices must be a long tensor (Q, K), got {getattr(indices, 'dtype', type(indices))}")
    if query_labels.shape != (indices.shape[0],) or item_labels.ndim != 1:
        raise ValueError(f"need one label per query ({indices.shape[0]}) and a 1-D tensor of item labels, got "
                         f"{tuple(query_labels.shape)} and {tuple(item_labels.shape)}")
    found = indices >= 0
    labels = item_labels.to(indices.device)[indices.clamp(min=0)]  # (Q, K)
    return found & (labels == query_labels.to(indices.device)[:, None])


def average_precision(rel: Tensor, n_relevant: Tensor | None = None) -> Tensor:
    r"""Average precision of each ranking, ``(Q,)``:

    $$\mathrm{AP} = \frac{1}{R}\sum_{i=1}^{K} \mathrm{rel}_i \cdot P@i, \qquad
      P@i = \frac{1}{i}\sum_{j \le i}\mathrm{rel}_j$$

    ``rel (Q, K)`` binary in rank order; ``R`` = ``n_relevant`` (Q,), the relevant items of each query in the
    whole collection (default: those in ``rel``, right when ``rel`` ranks every item). A relevant item missing
    from the top ``K`` adds nothing, so AP of a truncated list is at most that of the full one. ``R = 0`` gives 0.
    """
    r = _check_rel(rel)
    R = r.sum(1) if n_relevant is None else _check_counts(n_relevant, r.shape[0])
    ranks = torch.arange(1, r.shape[1] + 1, dtype=torch.float64, device=r.device)  # (K,)
    precision = r.cumsum(1) / ranks  # (Q, K) P@i
    return torch.where(R > 0, (precision * r).sum(1) / R.clamp(min=1), 0.0)


def ndcg_at_k(gains: Tensor, k: int, ideal_gains: Tensor | None = None) -> Tensor:
    r"""Normalised discounted cumulative gain at ``k`` of each ranking, ``(Q,)``:

    $$\mathrm{DCG@}k = \sum_{i=1}^{k} \frac{g_i}{\log_2(i + 1)}, \qquad
      \mathrm{nDCG@}k = \frac{\mathrm{DCG@}k}{\mathrm{DCG@}k \text{ of the best order}}$$

    ``gains (Q, K)`` in rank order (0/1 for binary relevance; linear gains, as scikit-learn's ``ndcg_score``).
    The best order sorts ``ideal_gains (Q, M)``: the gains of every candidate of each query (default:
    ``gains`` itself, right when it ranks every candidate). A query with no gain at all scores 0.
    """
    g = _check_rel(gains, "gains")
    k = positive_int("k", k)
    ideal = g if ideal_gains is None else _check_rel(ideal_gains, "ideal_gains")
    if ideal.shape[0] != g.shape[0]:
        raise ValueError(f"ideal_gains has {ideal.shape[0]} rows for {g.shape[0]} queries")

    def dcg(x: Tensor) -> Tensor:
        x = x[:, :k]  # (Q, <=k)
        discount = torch.log2(torch.arange(2, x.shape[1] + 2, dtype=torch.float64, device=x.device))  # (k,)
        return (x / discount).sum(1)

    best = dcg(ideal.sort(dim=1, descending=True).values)  # (Q,)
    return torch.where(best > 0, dcg(g) / best.clamp(min=1e-300), 0.0)


def retrieval_recall(rel: Tensor, k: int, n_relevant: Tensor) -> Tensor:
    r"""Recall at ``k`` of each query, ``(Q,)``: $|\{\text{relevant in the top } k\}| / R$ (0 where ``R = 0``)."""
    r = _check_rel(rel)
    k = positive_int("k", k)
    R = _check_counts(n_relevant, r.shape[0])
    return torch.where(R > 0, r[:, :k].sum(1) / R.clamp(min=1), 0.0)


def hit_rate(rel: Tensor, k: int) -> Tensor:
    """1 for each query with at least one relevant item in its top ``k``, else 0: ``(Q,)``."""
    r = _check_rel(rel)
    return (r[:, :positive_int("k", k)].sum(1) > 0).double()


def precision_at_k(rel: Tensor, k: int) -> Tensor:
    r"""Precision at ``k`` of each query, ``(Q,)``: relevant items in the top ``k``, divided by ``k``."""
    r = _check_rel(rel)
    k = positive_int("k", k)
    if k > r.shape[1]:
        raise ValueError(f"k={k} is more than the {r.shape[1]} ranked items")
    return r[:, :k].sum(1) / k


def bootstrap_ci(values: Tensor, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    r"""The mean of ``values (n,)`` and a percentile bootstrap interval: ``(mean, low, high)``.

    Resample the ``n`` values with replacement ``n_boot`` times; the interval holds the middle ``level`` of the
    resampled means. Seeded (a CPU generator), so the interval printed is the interval asserted.
    """
    v = _check_values(values)
    n_boot = positive_int("n_boot", n_boot)
    number("level", level, 0.0, 1.0, low_open=True, high_open=True)
    g = torch.Generator().manual_seed(seed)
    draws = torch.randint(len(v), (n_boot, len(v)), generator=g)  # (n_boot, n)
    means = v[draws].mean(1)  # (n_boot,)
    low, high = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return v.mean().item(), low.item(), high.item()


def paired_bootstrap_ci(a: Tensor, b: Tensor, n_boot: int = 2000, level: float = 0.95,
                        seed: int = 0) -> tuple[float, float, float]:
    """Mean and bootstrap interval of ``a - b``, two methods scored on the same items (resampled together)."""
    a, b = _check_values(a, "a"), _check_values(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must score the same items, got {tuple(a.shape)} and {tuple(b.shape)}")
    return bootstrap_ci(a - b, n_boot, level, seed)


def _check_values(values: object, name: str = "values") -> Tensor:
    if not isinstance(values, Tensor) or values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor, got "
                         f"{tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__}")
    v = values.detach().double().cpu()
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} contains inf or NaN")
    return v

