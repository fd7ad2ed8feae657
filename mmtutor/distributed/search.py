r"""Sharded exact search: every rank holds a slice of the database, rank 0 merges the partial top-k lists.

$$\mathrm{top}_k\big(X_0 \cup \dots \cup X_{W-1}\big) = \mathrm{top}_k\Big(\bigcup_r \mathrm{top}_k(X_r)\Big)$$

The best ``k`` of the whole database are among the best ``k`` of each shard: a row that is not in its
own shard's top ``k`` has ``k`` better rows beside it. So each rank searches its shard with chapter 6's
:func:`mmtutor.similarity.topk_search`, turns local row numbers into global ones (add the shard's first
row), and the merge keeps the ``k`` best of the ``W k`` candidates, ordered as ``topk_search`` orders
them: score descending, equal scores by the smaller index.

Bit for bit. A score is a sum of ``D`` products, and the matrix-product kernel sums them in an order that
depends on the row's position in the block it computes (:data:`SEARCH_BLOCK` rows). Cut the database
elsewhere and a score can change in its last bit, which reorders two rows whose scores differ only
there. :func:`shard_bounds` therefore cuts at multiples of the block, and then the merged answer equals
the single-process one exactly, ties included.

* :func:`shard_bounds`, :func:`local_topk`, :func:`merge_topk`: the pure pieces (no processes needed);
* :func:`sharded_topk_search`: the collective version (``dist.gather`` to rank 0);
* :func:`tie_heavy_vectors`: data whose scores are exact, so ties are real ties.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from .._checks import float_tensor, positive_int
from .._search import BLOCK_N as SEARCH_BLOCK  # database rows per tile of topk_search on the CPU; shards align to it
from ..similarity import topk_search


def shard_bounds(n: int, world_size: int, align: int = SEARCH_BLOCK) -> list[tuple[int, int]]:
    r"""Contiguous shards ``[(start, stop), ...]`` of ``n`` rows for ``world_size`` ranks, cut at multiples of
    ``align``.

    The ``\lceil n / align \rceil`` blocks are shared out as evenly as possible (rank ``r`` gets blocks
    ``\lfloor r B / W \rfloor`` to ``\lfloor (r+1) B / W \rfloor``); a shard may be empty when there are
    fewer blocks than ranks. ``align=1`` gives the plain even split.
    """
    positive_int("n", n)
    positive_int("world_size", world_size)
    positive_int("align", align)
    blocks = -(-n // align)
    cuts = [min(n, (r * blocks // world_size) * align) for r in range(world_size + 1)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def local_topk(queries: Tensor, shard: Tensor, k: int, offset: int) -> tuple[Tensor, Tensor]:
    r"""This shard's top ``k`` with *global* indices (``offset`` = the shard's first row): ``(Q, k)`` each.

    A shard with fewer than ``k`` rows (or none) pads its list with score ``-inf`` and index ``-1``,
    the convention of chapter 6's IVF search, so that every rank sends lists of the same shape.
    """
    float_tensor("queries", queries, "(Q, D)")
    float_tensor("shard", shard, "(N, D)")
    positive_int("k", k)
    positive_int("offset", offset, minimum=0)
    if shard.shape[1] != queries.shape[1]:
        raise ValueError(f"queries have D={queries.shape[1]} but the shard has D={shard.shape[1]}")
    n_q, kk = queries.shape[0], min(k, shard.shape[0])
    scores = torch.full((n_q, k), float("-inf"), dtype=torch.promote_types(queries.dtype, shard.dtype))
    indices = torch.full((n_q, k), -1, dtype=torch.long)
    if kk:
        s, i = topk_search(queries, shard, kk)  # (Q, kk), local row numbers
        scores[:, :kk], indices[:, :kk] = s.cpu(), i.cpu() + offset
    return scores, indices


def merge_topk(scores: Sequence[Tensor], indices: Sequence[Tensor], k: int) -> tuple[Tensor, Tensor]:
    r"""Merge per-shard top-k lists (global indices) into the top ``k`` overall: ``(Q, k)`` scores and indices.

    Order: score descending, equal scores by the smaller index; padding (index ``-1``) comes last.
    Two stable sorts do it: first by index, then by score (a stable sort keeps the index order of ties).
    """
    if len(scores) == 0 or len(scores) != len(indices):
        raise ValueError(f"need one score list per index list and at least one shard, got {len(scores)} "
                         f"and {len(indices)}")
    positive_int("k", k)
    rows = {x.shape[0] if isinstance(x, Tensor) and x.ndim == 2 else None for x in [*scores, *indices]}
    if len(rows) != 1 or None in rows:
        raise ValueError(f"every shard's scores and indices must be (Q, k_r) tensors with the same Q, got shapes "
                         f"{[tuple(getattr(x, 'shape', ())) for x in scores]} and "
                         f"{[tuple(getattr(x, 'shape', ())) for x in indices]}")
    s, i = torch.cat(list(scores), dim=1), torch.cat(list(indices), dim=1)  # (Q, W k) candidates
    if s.shape != i.shape or i.dtype != torch.long:
        raise ValueError(f"scores and indices must be (Q, k_r) pairs with long indices, got {tuple(s.shape)} and "
                         f"{tuple(i.shape)} {i.dtype}")
    if k > s.shape[1]:
        raise ValueError(f"k={k} but the shards hold only {s.shape[1]} candidates per query")
    key = torch.where(i < 0, torch.iinfo(torch.long).max, i)  # padding sorts after every real index
    by_index = torch.sort(key, dim=1, stable=True).indices  # (Q, W k)
    s, i = s.gather(1, by_index), i.gather(1, by_index)
    by_score = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]  # ties keep index order
    return s.gather(1, by_score), i.gather(1, by_score)


def sharded_topk_search(queries: Tensor, shard: Tensor, k: int, offset: int, dst: int = 0
                        ) -> tuple[Tensor, Tensor] | None:
    r"""Collective exact search: every rank calls it with its own ``shard``; rank ``dst`` gets the merged top ``k``.

    Each rank computes :func:`local_topk`, ``dist.gather`` brings the ``W`` lists of ``(Q, k)`` scores and
    indices to ``dst`` (``Q k (4 + 8)`` bytes per rank for float32 scores), and ``dst`` runs
    :func:`merge_topk`. Returns ``(scores, indices)`` on ``dst`` and ``None`` on the other ranks. Every
    rank must pass the same ``queries`` and ``k``.
    """
    if not dist.is_initialized():
        raise RuntimeError("sharded_topk_search needs a process group: call init_from_env() first (under torchrun)")
    scores, indices = local_topk(queries, shard, k, offset)
    comm = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    scores, indices = scores.to(comm), indices.to(comm)
    rank, world = dist.get_rank(), dist.get_world_size()
    all_s = [torch.empty_like(scores) for _ in range(world)] if rank == dst else None
    all_i = [torch.empty_like(indices) for _ in range(world)] if rank == dst else None
    dist.gather(scores, all_s, dst=dst)
    dist.gather(indices, all_i, dst=dst)
    if rank != dst:
        return None
    return merge_topk([x.cpu() for x in all_s], [x.cpu() for x in all_i], k)


def tie_heavy_vectors(n: int, dim: int, n_ones: int = 4, seed: int = 0) -> Tensor:
    r"""``n`` rows of length ``dim`` with exactly ``n_ones`` entries 1 and the rest 0: cosine scores are exact.

    With ``n_ones`` a power of 4 the unit rows hold ``1/\sqrt{n_{ones}}``, a power of 2, so every product and
    every sum is exact in floating point: the score of two rows is ``|overlap| / n_{ones}`` whatever the
    order of the additions, and equal scores are truly equal (five values for ``n_ones = 4``).
    """
    positive_int("n", n)
    positive_int("dim", dim)
    if n_ones not in (1, 4, 16, 64) or n_ones > dim:
        raise ValueError(f"n_ones must be a power of 4 (1, 4, 16, 64) and <= dim={dim}, got {n_ones!r}")
    g = torch.Generator().manual_seed(seed)
    ones = torch.rand(n, dim, generator=g).argsort(dim=1)[:, :n_ones]  # (n, n_ones) distinct columns per row
    return torch.zeros(n, dim).scatter_(1, ones, 1.0)
