r"""Simulated readers of the newsgroup posts (:mod:`mmtutor.data.newsgroups`): click histories with known rules.

No click log ships offline, so chapter 8 simulates one, with every rule stated here and every draw seeded:

1. **Items** are the posts. Each has its real group $g_i$ and a hidden **taste** $t_i$, one of ``n_tastes``
   drawn uniformly at random: what makes people click that the words do not show (the author, the tone, the
   day it came). It also has a **popularity** $\pi_i = e^{z_i}$, $z_i \sim \mathcal N(0, \sigma^2)$ with
   $\sigma$ = ``popularity_spread``: a few posts are read by many.
2. **Users** each prefer one group (with probability ``1 - p_both``) or both groups (``p_both``), and like
   ``tastes_per_user`` of the tastes.
3. **Clicks**: a user clicks ``n_u`` distinct posts, $n_u$ uniform in ``clicks_per_user``, drawn one after the
   other without replacement with probability
   $$P(i) \propto \pi_i \cdot a_u(g_i) \cdot b_u(t_i), \qquad a_u = \begin{cases}1 & g_i \text{ preferred}\\
   \text{off\_group} & \text{else}\end{cases}, \quad b_u = \begin{cases}\text{taste\_boost} & t_i \text{ liked}\\
   1 & \text{else}\end{cases}$$
4. **Split**: the last ``n_test`` clicks of every user are held out; the rest is the training history.

A recommender sees only the training histories (and, for content-based methods, the posts' text); the
popularity baseline can learn $\pi$, a content model the group preference, and only a model of who clicked
what together can learn the hidden tastes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import number, positive_int


@dataclass(frozen=True)
class ReaderConfig:
    n_users: int = 600  # simulated readers
    n_tastes: int = 8  # hidden tastes of the posts
    tastes_per_user: int = 2  # tastes each reader likes
    taste_boost: float = 6.0  # how much more a liked taste is clicked
    off_group: float = 0.15  # relative click rate of a group the reader does not prefer
    p_both: float = 0.3  # share of readers who prefer both groups
    popularity_spread: float = 1.0  # sigma of the log-normal popularity
    clicks_per_user: tuple[int, int] = (8, 16)  # n_u is uniform in this range (both ends included)
    n_test: int = 3  # last clicks of each reader held out


@dataclass(frozen=True)
class Readers:
    train: list[list[int]]  # train[u]: the posts reader u clicked first, in click order
    test: list[list[int]]  # test[u]: the last n_test clicks of reader u, held out
    taste: torch.Tensor  # (N,) the hidden taste of every post
    popularity: torch.Tensor  # (N,) pi_i
    groups_preferred: list[tuple[int, ...]]  # the group(s) each reader prefers
    tastes_liked: list[tuple[int, ...]]  # the tastes each reader likes


def simulate_readers(item_groups: torch.Tensor, config: ReaderConfig = ReaderConfig(), seed: int = 0) -> Readers:
    """Click histories of ``config.n_users`` readers of posts in groups ``item_groups (N,)`` (see the module)."""
    if not isinstance(item_groups, torch.Tensor) or item_groups.ndim != 1 or item_groups.dtype != torch.long:
        raise TypeError("item_groups must be a long tensor (N,) with the group of every post")
    c = config
    positive_int("n_users", c.n_users)
    positive_int("n_tastes", c.n_tastes)
    positive_int("tastes_per_user", c.tastes_per_user)
    number("taste_boost", c.taste_boost, 0.0)
    number("off_group", c.off_group, 0.0)
    number("p_both", c.p_both, 0.0, 1.0)
    low, high = c.clicks_per_user
    if not 1 <= low <= high or high > len(item_groups) or c.n_test >= low:
        raise ValueError(f"need 1 <= clicks_per_user[0] <= [1] <= {len(item_groups)} and n_test < clicks_per_user[0]"
                         f", got {c.clicks_per_user} and n_test={c.n_test}")
    g = torch.Generator().manual_seed(seed)
    n_items, n_groups = len(item_groups), int(item_groups.max()) + 1
    taste = torch.randint(c.n_tastes, (n_items,), generator=g)  # (N,)
    popularity = (c.popularity_spread * torch.randn(n_items, generator=g, dtype=torch.float64)).exp()  # (N,)
    train, test, groups_preferred, tastes_liked = [], [], [], []
    for _ in range(c.n_users):
        if torch.rand(1, generator=g).item() < c.p_both:
            groups = tuple(range(n_groups))
        else:
            groups = (int(torch.randint(n_groups, (1,), generator=g)),)
        liked = tuple(torch.randperm(c.n_tastes, generator=g)[:c.tastes_per_user].tolist())
        a = torch.where(torch.isin(item_groups, torch.tensor(groups)), 1.0, c.off_group)  # (N,)
        b = torch.where(torch.isin(taste, torch.tensor(liked)), c.taste_boost, 1.0)  # (N,)
        n_u = int(torch.randint(low, high + 1, (1,), generator=g))
        clicks = torch.multinomial(popularity * a * b, n_u, replacement=False, generator=g).tolist()
        train.append(clicks[:-c.n_test])
        test.append(clicks[-c.n_test:])
        groups_preferred.append(groups)
        tastes_liked.append(liked)
    return Readers(train, test, taste, popularity, groups_preferred, tastes_liked)
