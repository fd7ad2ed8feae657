r"""The chapter's demos, run by every rank of one launch:

    python -m torch.distributed.run --nnodes=1 --nproc_per_node=2 --master_addr=127.0.0.1 --master_port=29500 \
        -m mmtutor.distributed.launch --out /tmp/run

Each rank joins the process group (:func:`mmtutor.distributed.init_from_env`), runs the demos named by
``--demos`` (default all: ``collectives``, ``gather``, ``ddp``, ``timing``, ``search``) and writes what it saw
to ``OUT/rank{r}.json`` (numbers) and ``OUT/rank{r}.pt`` (tensors), so that a notebook or a test can
compare them with single-process references built from the same seeds (:class:`DemoConfig`,
:func:`demo_embeddings`, :func:`search_data`). ``--fail-rank R`` makes rank ``R`` raise before the
first collective, to show what torchrun does then: it stops the other ranks and exits non-zero with
rank ``R``'s error; ``--hang-rank R`` makes it sleep instead, to show the timeouts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel as DDP

from ..alignment import clip_loss
from .contrastive import digit_batch, digit_model, freeze_batchnorm, gathered_clip_loss
from .process import Context, init_from_env, shutdown
from .search import shard_bounds, sharded_topk_search, tie_heavy_vectors

DEMOS = ("collectives", "gather", "ddp", "timing", "search")


@dataclass(frozen=True)
class DemoConfig:
    r"""Sizes and seeds of the demos; the references rebuild the same data from them."""

    n_pairs: int = 16  # global batch of the gathered-loss demo on fixed random embeddings
    emb_dim: int = 8  # their dimension
    emb_scale: float = 10.0  # the logit scale s of that demo
    batch: int = 128  # global batch of the DDP demos (chapter 7's digit batch)
    lr: float = 0.1  # plain SGD, one step: the step is the gradient, nothing else
    search_n: int = 20_000  # database rows (not a multiple of the block: the last shard is ragged)
    search_dim: int = 64  # dimension of the random and the duplicated data
    ties_dim: int = 32  # dimension of the tie-heavy data (4 ones per row)
    search_q: int = 256  # queries
    k: int = 10
    reps: int = 9  # timed repetitions (their median and the fastest are kept)


def demo_embeddings(config: DemoConfig = DemoConfig()) -> tuple[Tensor, Tensor]:
    r"""The global image and text embeddings ``(n_pairs, emb_dim)`` of the gathered-loss demo."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(config.n_pairs, config.emb_dim, generator=g), torch.randn(config.n_pairs, config.emb_dim,
                                                                                 generator=g)


def search_data(kind: str, config: DemoConfig = DemoConfig()) -> tuple[Tensor, Tensor]:
    r"""``(queries, database)`` of the search demo: ``kind`` is ``"random"`` (Gaussian), ``"ties"`` (exact
    scores, many equal) or ``"duplicates"`` (every vector stored about 8 times)."""
    g = torch.Generator().manual_seed(1)
    n, q, d = config.search_n, config.search_q, config.search_dim
    if kind == "random":
        return torch.randn(q, d, generator=g), torch.randn(n, d, generator=g)
    if kind == "ties":
        return tie_heavy_vectors(q, config.ties_dim, seed=2), tie_heavy_vectors(n, config.ties_dim, seed=3)
    if kind == "duplicates":
        base = torch.randn(n // 8, d, generator=g)
        return torch.randn(q, d, generator=g), base[torch.randint(0, len(base), (n,), generator=g)]
    raise ValueError(f"kind must be 'random', 'ties' or 'duplicates', got {kind!r}")


def _values(x: Tensor) -> list[float]:
    return [round(float(v), 6) for v in x.flatten().cpu()]


def demo_collectives(ctx: Context, config: DemoConfig) -> tuple[dict, dict]:
    r"""broadcast, all-reduce (sum), all-gather and gather to rank 0 on small seeded tensors."""
    r, w, out = ctx.rank, ctx.world_size, {}
    x = (torch.tensor([3.0, 1.0, 4.0]) if r == 0 else torch.zeros(3)).to(ctx.device)  # nccl needs GPU tensors
    before = _values(x)
    dist.broadcast(x, src=0)
    out["broadcast"] = {"before": before, "after": _values(x)}
    x = torch.randn(4, generator=torch.Generator().manual_seed(100 + r)).round(decimals=2).to(ctx.device)
    before = _values(x)
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    out["all_reduce"] = {"before": before, "after": _values(x)}
    x = torch.randn(2, generator=torch.Generator().manual_seed(200 + r)).round(decimals=2).to(ctx.device)
    parts = [torch.empty_like(x) for _ in range(w)]
    dist.all_gather(parts, x)
    out["all_gather"] = {"before": _values(x), "after": _values(torch.cat(parts))}
    parts = [torch.empty_like(x) for _ in range(w)] if r == 0 else None
    dist.gather(x, parts, dst=0)
    out["gather"] = {"before": _values(x), "after": _values(torch.cat(parts)) if r == 0 else []}
    return out, {}


def demo_gather(ctx: Context, config: DemoConfig) -> tuple[dict, dict]:
    r"""CLIP's loss on this rank's slice of fixed embeddings: local negatives only, gathered, gathered local_loss."""
    U, T = demo_embeddings(config)
    b = config.n_pairs // ctx.world_size
    rows = slice(ctx.rank * b, (ctx.rank + 1) * b)
    numbers, tensors = {}, {}
    for name, fn in (("local_only", lambda u, t: clip_loss(u, t, config.emb_scale)),
                     ("gathered", lambda u, t: gathered_clip_loss(u, t, config.emb_scale)),
                     ("gathered_local_loss", lambda u, t: gathered_clip_loss(u, t, config.emb_scale, local_loss=True))):
        u, t = U[rows].to(ctx.device).requires_grad_(), T[rows].to(ctx.device).requires_grad_()
        loss = fn(u, t)
        loss.backward()
        numbers[name] = loss.item()
        tensors[name] = {"grad_image": u.grad.cpu(), "grad_text": t.grad.cpu()}
    return numbers, tensors


def _ddp_model(ctx: Context, live_batchnorm: bool) -> DDP:
    model = digit_model(seed=0).to(ctx.device)
    if not live_batchnorm:
        freeze_batchnorm(model)
    return DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


def _shard(ctx: Context, batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    b = batch[0].shape[0] // ctx.world_size
    return tuple(x[ctx.rank * b:(ctx.rank + 1) * b].to(ctx.device) for x in batch)


def demo_ddp(ctx: Context, config: DemoConfig) -> tuple[dict, dict]:
    r"""One SGD step of chapter 7's digit model under DDP, each rank on its half of the batch."""
    x, ids = _shard(ctx, digit_batch(config.batch, seed=0))
    numbers, tensors = {}, {}
    for name, gathered, live in (("gathered", True, False), ("local", False, False), ("gathered_live_bn", True, True)):
        model = _ddp_model(ctx, live)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr)
        u, t, s = model(x, ids)
        loss = gathered_clip_loss(u, t, s) if gathered else clip_loss(u, t, s)
        loss.backward()
        opt.step()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        reference = flat.clone()
        dist.broadcast(reference, src=0)
        gap = (flat - reference).abs().max()
        dist.all_reduce(gap, op=dist.ReduceOp.MAX)  # the largest difference between any rank and rank 0
        numbers[name] = {"loss": loss.item(), "max_gap_between_ranks": gap.item()}
        if ctx.rank == 0:
            tensors[name] = {k: v.detach().cpu() for k, v in model.module.state_dict().items()}
    return numbers, tensors


def _timed_interleaved(fns: dict[str, Callable[[], object]], reps: int, device: torch.device
                       ) -> dict[str, dict[str, float]]:
    r"""Time every function of ``fns`` once per repetition, in turn (after a barrier each, two untimed warm-up
    rounds first), so that a burst of other work on the machine slows all of them alike; returns
    ``{"median": {name: s}, "fastest": {name: s}}``. The fastest repetition is the least disturbed by other
    programs, the estimate comparisons should use on a shared machine."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(reps + 2):
        for name, fn in fns.items():
            dist.barrier()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # GPU work is asynchronous: wait for it before reading the clock
            if i >= 2:
                times[name].append(time.perf_counter() - start)
    return {"median": {name: statistics.median(t) for name, t in times.items()},
            "fastest": {name: min(t) for name, t in times.items()}}


def demo_timing(ctx: Context, config: DemoConfig) -> tuple[dict, dict]:
    r"""Where a step's time goes: compute at the full and the local batch, the gradient all-reduce, the
    embedding all-gather (images and texts), the whole DDP step; and all-reduce times for message sizes from
    1 KB to 16 MB (the alpha-beta fit). Each as the median and the fastest of ``config.reps`` repetitions,
    interleaved (see :func:`_timed_interleaved`)."""
    full = tuple(v.to(ctx.device) for v in digit_batch(config.batch, seed=0))
    local = _shard(ctx, full)
    plain = freeze_batchnorm(digit_model(seed=0).to(ctx.device))

    def compute(batch: tuple[Tensor, ...]) -> None:
        plain.zero_grad()
        clip_loss(*plain(*batch)).backward()

    ddp = _ddp_model(ctx, live_batchnorm=False)

    def ddp_step() -> None:
        ddp.zero_grad()
        gathered_clip_loss(*ddp(*local)).backward()

    def gather_both() -> None:
        dist.all_gather(parts, emb)  # the image embeddings
        dist.all_gather(parts, emb)  # and the text embeddings

    grad_numel = sum(p.numel() for p in plain.parameters())
    grads = torch.zeros(grad_numel, device=ctx.device)
    emb = torch.zeros(local[0].shape[0], 64, device=ctx.device)
    parts = [torch.empty_like(emb) for _ in range(ctx.world_size)]
    # each rank alone on its own core: compute_full_batch is what one process would take for the whole batch
    pieces = _timed_interleaved({"compute_full_batch": lambda: compute(full),
                                 "compute_local_batch": lambda: compute(local),
                                 "all_reduce_grads": lambda: dist.all_reduce(grads),
                                 "all_gather_embeddings": gather_both, "ddp_step": ddp_step}, config.reps, ctx.device)
    buffers = {4 * 2**log2: torch.zeros(2**log2, device=ctx.device) for log2 in range(8, 23, 2)}  # 1 KB .. 16 MB
    sweep = _timed_interleaved({str(n): (lambda b=b: dist.all_reduce(b)) for n, b in buffers.items()}, config.reps,
                               ctx.device)
    out = {"grad_bytes": 4 * grad_numel, "embedding_bytes_per_rank": 2 * emb.numel() * 4, "reps": config.reps,
           **pieces, "sweep_bytes": list(buffers),
           "sweep_median_s": [sweep["median"][str(n)] for n in buffers],
           "sweep_fastest_s": [sweep["fastest"][str(n)] for n in buffers]}
    return out, {}


def demo_search(ctx: Context, config: DemoConfig) -> tuple[dict, dict]:
    r"""Sharded exact search on three data sets, with shards cut at search blocks and cut evenly."""
    numbers, tensors = {}, {}
    for kind in ("random", "ties", "duplicates"):
        queries, database = search_data(kind, config)  # a real system loads only its own shard
        for mode, align in (("aligned", None), ("even", 1)):
            bounds = shard_bounds(len(database), ctx.world_size) if align is None else \
                shard_bounds(len(database), ctx.world_size, align)
            start, stop = bounds[ctx.rank]
            t0 = time.perf_counter()
            result = sharded_topk_search(queries, database[start:stop], config.k, offset=start)
            numbers[f"{kind}/{mode}"] = {"bounds": bounds, "seconds": time.perf_counter() - t0}
            if result is not None:
                tensors[f"{kind}/{mode}"] = {"scores": result[0], "indices": result[1]}
    return numbers, tensors


@record
def main(argv: list[str] | None = None) -> None:
    r"""Entry point of every rank (see the module docstring for the command line)."""
    parser = argparse.ArgumentParser(description="the scaling-out chapter's demos, one launch, every rank")
    parser.add_argument("--out", required=True, type=Path, help="folder for rank{r}.json and rank{r}.pt")
    parser.add_argument("--demos", default=",".join(DEMOS), help=f"comma-separated subset of {','.join(DEMOS)}")
    parser.add_argument("--fail-rank", type=int, default=None, help="this rank raises before the first collective")
    parser.add_argument("--hang-rank", type=int, default=None, help="this rank sleeps before the first collective "
                        "(to show the timeouts and the clean-up)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a collective may wait")
    parser.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto",
                        help="auto: nccl when every rank can have its own GPU, else gloo")
    args = parser.parse_args(argv)
    demos = [d for d in args.demos.split(",") if d]
    unknown = sorted(set(demos) - set(DEMOS))
    if unknown:
        raise ValueError(f"unknown demos {unknown}; choose from {DEMOS}")
    started = time.perf_counter()
    ctx = init_from_env(None if args.backend == "auto" else args.backend, timeout_s=args.timeout)
    print(f"[rank {ctx.rank}/{ctx.world_size}] joined the process group: {ctx.backend} on {ctx.device}", flush=True)
    if ctx.device.type == "cuda":  # TF32 would round convolutions to 10 bits: no float-tolerance comparison then
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        if ctx.rank == args.fail_rank:
            raise RuntimeError(f"rank {ctx.rank} fails on purpose (--fail-rank {args.fail_rank})")
        if ctx.rank == args.hang_rank:
            time.sleep(3600)
        config = DemoConfig()
        numbers = {"rank": ctx.rank, "world_size": ctx.world_size, "backend": ctx.backend,
                   "device": str(ctx.device), "threads": torch.get_num_threads(), "config": asdict(config),
                   "init_s": time.perf_counter() - started, "seconds": {}}
        tensors = {}
        demo_fns = {"collectives": demo_collectives, "gather": demo_gather, "ddp": demo_ddp,
                    "timing": demo_timing, "search": demo_search}
        for name in demos:
            t0 = time.perf_counter()
            numbers[name], tensors[name] = demo_fns[name](ctx, config)
            numbers["seconds"][name] = time.perf_counter() - t0
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save(tensors, args.out / f"rank{ctx.rank}.pt")
        (args.out / f"rank{ctx.rank}.json").write_text(json.dumps(numbers, indent=1))
        print(f"[rank {ctx.rank}/{ctx.world_size}] {ctx.backend} on {ctx.device}: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in numbers["seconds"].items()), flush=True)
        dist.barrier()
    finally:
        shutdown()


if __name__ == "__main__":
    main()
