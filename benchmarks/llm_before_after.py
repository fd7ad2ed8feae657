r"""Chapter 5's Llama (SmolLM2) against an earlier revision of itself, both imported into one process.

    git worktree add /tmp/before <commit>              # the revision to compare with
    python benchmarks/llm_before_after.py /tmp/before  # prompt of 128 tokens, 32 generated, 15 rounds

Separate runs of ``llm_vs_transformers.py`` on a shared 2-core machine differ by 20-40%; here the same
weights are loaded by both revisions, checked to give the same logits, then timed in turns (now, before;
before, now; ...) so that a busy moment slows both alike. Medians of ``--repeats``, with the spread.
"""

from __future__ import annotations

import importlib
import statistics
import time

import torch
from search_before_after import before_after_parser, load_revision

from mmtutor.language_model import KVCache
from mmtutor.pretrained import load_smollm2


def prompt_rate(model, ids: torch.Tensor) -> float:
    """Tokens per second of one forward pass over the whole prompt."""
    start = time.perf_counter()
    model(ids)
    return ids.shape[1] / (time.perf_counter() - start)


def generation_rate(model, ids: torch.Tensor, n_new: int, cache_class: type) -> float:
    """Tokens per second of greedy decoding with the KV cache, after an 8-token prompt."""
    cache = cache_class()
    x = model(ids[:, :8], cache=cache)[:, -1].argmax(-1, keepdim=True)  # (1, 1)
    start = time.perf_counter()
    for _ in range(n_new):
        x = model(x, cache=cache)[:, -1].argmax(-1, keepdim=True)
    return n_new / (time.perf_counter() - start)


@torch.no_grad()
def main() -> None:
    parser = before_after_parser(__doc__, repeats=15)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=32)
    args = parser.parse_args()
    load_revision(args.before)
    old_pretrained = importlib.import_module("mmtutor_before.pretrained")
    old_cache = importlib.import_module("mmtutor_before.language_model").KVCache
    torch.set_num_threads(args.threads)

    cpu = torch.device("cpu")
    ours, _ = load_smollm2(cpu)
    before, _ = old_pretrained.load_smollm2(cpu)
    ids = torch.randint(0, 40_000, (1, args.prompt), generator=torch.Generator().manual_seed(0))  # (1, T)
    torch.testing.assert_close(ours(ids), before(ids), atol=1e-4, rtol=1e-4)

    rates: dict[str, tuple[list[float], list[float]]] = {"prompt": ([], []), "generation": ([], [])}
    sides = [(ours, KVCache, 0), (before, old_cache, 1)]
    for r in range(args.repeats):  # in turns, the first of each round alternating: no side always goes first
        for model, cache_class, side in sides if r % 2 == 0 else sides[::-1]:
            rates["prompt"][side].append(prompt_rate(model, ids))
            rates["generation"][side].append(generation_rate(model, ids, args.new, cache_class))
    print(f"SmolLM2 now vs {args.before}: prompt of {args.prompt} tokens, {args.new} generated, "
          f"{args.threads} threads, median (min-max) of {args.repeats}")
    print(f"{'tokens/s':12} {'now':>18} {'before':>18} {'ratio':>6}")
    for name, (now, then) in rates.items():
        a, b = statistics.median(now), statistics.median(then)
        print(f"{name:12} {a:7.1f} ({min(now):4.0f}-{max(now):4.0f}) {b:7.1f} ({min(then):4.0f}-{max(then):4.0f}) "
              f"{a / b:6.2f}")


if __name__ == "__main__":
    main()
