"""Generation with and without the KV cache (``mmtutor.language_model.generate``): new tokens per second.

Without the cache every new token runs the model over the whole sequence so far, so the cost of generating
``n`` tokens grows like ``n^2``; with it each step runs the model on one token and attends over the cached
keys and values. Same model, same prompt, greedy, so both produce the same tokens (checked); the model is the
chapter's GPT with random weights (the speed does not depend on the weights).

    python benchmarks/generate_kv_cache.py [--lengths 64 128 256 512] [--d-model 128] [--layers 4]
                                           [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from mmtutor.device import get_device
from mmtutor.language_model import GPT, GPTConfig, generate


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_generate(model: GPT, prompt: torch.Tensor, n: int, use_cache: bool, device: torch.device) -> tuple:
    _sync(device)
    start = time.perf_counter()
    out = generate(model, prompt, n, temperature=0, use_cache=use_cache)
    _sync(device)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default=None, help="default: mmtutor.get_device()")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else get_device()

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=args.vocab, context_length=max(args.lengths) + 1, d_model=args.d_model,
                       n_heads=args.heads, n_layers=args.layers)
    model = GPT(config).to(device).eval()
    prompt = torch.randint(0, args.vocab, (1, 1)).to(device)
    generate(model, prompt, 8)  # warm up
    print(f"GPT d_model={args.d_model}, {args.layers} layers, {sum(p.numel() for p in model.parameters()):,} "
          f"parameters, greedy, batch 1, device {device}, {torch.get_num_threads()} CPU thread(s)")
    print(f"{'new tokens':>10} {'cache (tok/s)':>14} {'no cache (tok/s)':>17} {'speed-up':>9}")
    for n in args.lengths:
        cached, t_cache = time_generate(model, prompt, n, True, device)
        plain, t_plain = time_generate(model, prompt, n, False, device)
        assert torch.equal(cached, plain), "the cache changed the tokens"
        print(f"{n:10d} {n / t_cache:14.1f} {n / t_plain:17.1f} {t_plain / t_cache:8.1f}x")


if __name__ == "__main__":
    main()
