r"""Cost models: bytes on the wire for the collectives, where a data-parallel step spends its time, and what
a billion-vector search needs in memory, compute and network.

Ring collectives (the algorithm NCCL and gloo use for large messages) move, per rank,

$$\text{all-gather: } (W-1)\,b, \qquad \text{all-reduce: } 2\,\frac{W-1}{W}\,n$$

bytes, for ``b`` bytes contributed by each rank and an ``n``-byte tensor to reduce. With a latency
``\alpha`` per message and a bandwidth ``\beta`` (bytes per second) a ring all-reduce takes
``2 (W-1) (\alpha + n / (W \beta))`` (the alpha-beta model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._checks import number, positive_int


def negatives_per_sample(global_batch: int, world_size: int, gathered: bool) -> int:
    r"""How many negatives one image sees in the image-to-text half of CLIP's loss: ``N - 1`` when the
    embeddings are gathered, ``N / W - 1`` (the other local texts) when each rank keeps its own."""
    positive_int("global_batch", global_batch)
    positive_int("world_size", world_size)
    if global_batch % world_size:
        raise ValueError(f"global_batch {global_batch} must be a multiple of world_size {world_size}")
    return global_batch - 1 if gathered else global_batch // world_size - 1


def all_gather_bytes(bytes_per_rank: int, world_size: int) -> int:
    r"""Bytes each rank receives (and, in a ring, sends) in one all-gather: ``(W - 1) b``."""
    positive_int("bytes_per_rank", bytes_per_rank, minimum=0)
    positive_int("world_size", world_size)
    return (world_size - 1) * bytes_per_rank


def all_reduce_bytes(nbytes: int, world_size: int) -> float:
    r"""Bytes each rank sends in a ring all-reduce of an ``n``-byte tensor: ``2 (W-1)/W n`` (a reduce-scatter
    then an all-gather, each of ``W - 1`` steps with ``n / W`` bytes)."""
    positive_int("nbytes", nbytes, minimum=0)
    positive_int("world_size", world_size)
    return 2 * (world_size - 1) / world_size * nbytes


def fit_latency_bandwidth(nbytes: Sequence[float], seconds: Sequence[float], world_size: int = 2
                          ) -> tuple[float, float]:
    r"""Fit the alpha-beta model to measured all-reduce times: returns ``(alpha seconds, beta bytes/s)``.

    Least squares of ``t = 2 (W-1) \alpha + 2 (W-1)/W \cdot n / \beta`` over the measurements, on relative
    errors (each row divided by its ``t``), so that the small messages, which fix ``\alpha``, count as much as
    the large ones, which fix ``\beta``.
    """
    positive_int("world_size", world_size, minimum=2)
    n = torch.as_tensor(nbytes, dtype=torch.float64)
    t = torch.as_tensor(seconds, dtype=torch.float64)
    if n.ndim != 1 or n.shape != t.shape or len(n) < 2:
        raise ValueError(f"need two equal-length lists of at least 2 measurements, got {tuple(n.shape)} "
                         f"and {tuple(t.shape)}")
    steps = 2 * (world_size - 1)
    if not bool((t > 0).all()) or not bool((n >= 0).all()):
        raise ValueError("times must be > 0 and sizes >= 0")
    A = torch.stack([torch.full_like(n, steps), steps / world_size * n], dim=1)  # (M, 2): [alpha, 1/beta]
    alpha, inv_beta = torch.linalg.lstsq(A / t[:, None], torch.ones_like(t)[:, None]).solution[:, 0].tolist()
    return max(alpha, 0.0), 1.0 / max(inv_beta, 1e-30)


def all_reduce_seconds(nbytes: float, world_size: int, alpha: float, beta: float) -> float:
    r"""The alpha-beta model of a ring all-reduce: ``2 (W-1) (\alpha + n / (W \beta))`` (0 for one rank)."""
    positive_int("world_size", world_size)
    number("nbytes", nbytes, 0)
    number("alpha", alpha, 0)
    number("beta", beta, 0, low_open=True)
    return 2 * (world_size - 1) * (alpha + nbytes / (world_size * beta))


def data_parallel_step(compute_seconds: float, grad_bytes: float, world_size: int, alpha: float, beta: float
                       ) -> dict[str, float]:
    r"""Model of one data-parallel step with a fixed global batch: ``{"compute": t_1 / W, "communication": ...}``.

    The compute of the whole batch on one process (``compute_seconds``) is shared by ``W`` ranks; the
    gradients (``grad_bytes``) are all-reduced once, not overlapped with the backward (DDP overlaps
    part of it, so this is the pessimistic end).
    """
    number("compute_seconds", compute_seconds, 0)
    positive_int("world_size", world_size)
    return {"compute": compute_seconds / world_size,
            "communication": all_reduce_seconds(grad_bytes, world_size, alpha, beta)}


def search_estimate(n: int = 10**9, dim: int = 384, *, flops_per_s: float, pq_codes_per_s: float,
                    ram_per_machine: float = 256e9, n_lists: int = 65536, n_probe: int = 64, pq_m: int = 48,
                    k: int = 10, network_bytes_per_s: float = 1.25e9, network_latency_s: float = 50e-6
                    ) -> list[dict[str, float | str]]:
    r"""A paper estimate for ``n`` vectors of ``dim`` float32: exact, IVF-Flat and IVF-PQ spread over machines.

    Per method: bytes stored (``4 d`` per vector, or ``m`` bytes of PQ code, plus an 8-byte id for the
    inverted lists), machines needed at ``ram_per_machine`` (half of it for the index), the compute of one
    query (``2 d`` flops per scanned vector for exact and IVF-Flat at ``flops_per_s``; PQ codes at
    ``pq_codes_per_s``; the coarse search of IVF over ``n_lists`` centroids), that time spread over the
    machines, and the network time of one query: the query to every machine and ``k`` results (12 bytes
    each) back from each, plus one round-trip latency. ``compute / network`` above 1: adding machines
    still helps; below 1 the network sets the pace. ``network_bound_machines`` is where that happens, the
    ``M`` at which a machine's share of the compute equals the network time:

    $$\frac{t}{M} = \ell + M c,\quad c = \frac{4d + 12k}{\beta} \;\Rightarrow\;
      M^* = \frac{-\ell + \sqrt{\ell^2 + 4 c t}}{2c}.$$
    """
    for name, v in (("n", n), ("dim", dim), ("n_lists", n_lists), ("n_probe", n_probe), ("pq_m", pq_m), ("k", k)):
        positive_int(name, v)
    for name, v in (("flops_per_s", flops_per_s), ("pq_codes_per_s", pq_codes_per_s),
                    ("ram_per_machine", ram_per_machine), ("network_bytes_per_s", network_bytes_per_s)):
        number(name, v, 0, low_open=True)
    scanned = n * min(1.0, n_probe / n_lists)  # vectors an IVF query looks at
    coarse = 2 * n_lists * dim / flops_per_s
    methods = [
        ("exact (flat)", n * dim * 4.0, 2.0 * n * dim / flops_per_s),
        ("IVF-Flat", n * (dim * 4.0 + 8) + n_lists * dim * 4.0, coarse + 2.0 * scanned * dim / flops_per_s),
        ("IVF-PQ", n * (pq_m + 8.0) + n_lists * dim * 4.0 + 256 * dim * 4.0,
         coarse + 2 * 256 * dim / flops_per_s + scanned / pq_codes_per_s),
    ]
    rows: list[dict[str, float | str]] = []
    for name, nbytes, seconds in methods:
        machines = max(1, math.ceil(nbytes / (ram_per_machine / 2)))
        c = (dim * 4 + k * 12) / network_bytes_per_s  # seconds of network per machine asked
        network = network_latency_s + machines * c
        bound = (-network_latency_s + math.sqrt(network_latency_s**2 + 4 * c * seconds)) / (2 * c)
        rows.append({"method": name, "bytes": nbytes, "machines": machines, "query_compute_s": seconds,
                     "query_s_spread": seconds / machines, "query_network_s": network,
                     "compute_over_network": seconds / machines / network, "network_bound_machines": bound})
    return rows
