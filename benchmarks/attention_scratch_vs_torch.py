"""Our scaled dot-product attention versus torch's fused ``F.scaled_dot_product_attention``.

Both compute softmax(Q K^T / sqrt(d_k)) V for q, k, v of shape (B, heads, T, d_k); ours also
returns the (T x T) weight matrix, which it has to materialise, while torch's kernels may stream
over blocks of keys and never hold it. The table gives the median time of a forward pass, and of
a forward plus backward pass, for growing T, and the ratio ours / torch. Both grow like T^2.

    python benchmarks/attention_scratch_vs_torch.py [--batch 4] [--heads 4] [--d-k 64] [--threads 2]

Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch
from torch.nn import functional as F

from mmtutor.attention import causal_mask, scaled_dot_product_attention


def median_seconds(fn, repeats: int, sync) -> float:
    fn()  # warm-up (allocations, kernel selection)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours(q, k, v, mask):
    return scaled_dot_product_attention(q, k, v, mask)[0]


def theirs(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def forward_backward(f, q, k, v, mask):
    f(q, k, v, mask).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-k", type=int, default=64)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (0 = leave as is)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
          f"q, k, v: ({args.batch}, {args.heads}, T, {args.d_k}) float32")
    header = (f"{'T':>6} {'mask':>7} | {'fwd ours ms':>11} {'fwd torch ms':>12} {'ratio':>6} | "
              f"{'f+b ours ms':>11} {'f+b torch ms':>12} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for T in args.lengths:
        g = torch.Generator().manual_seed(T)
        q, k, v = (torch.randn(args.batch, args.heads, T, args.d_k, generator=g).to(device) for _ in range(3))
        for masked in (False, True):
            mask = causal_mask(T, device=device) if masked else None
            # check first that both compute the same thing
            ours_out, _ = scaled_dot_product_attention(q, k, v, mask)
            torch.testing.assert_close(ours_out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                                       atol=1e-4, rtol=1e-4)
            repeats = max(3, min(30, int(2e6 / T**2)))
            q_, k_, v_ = (t.clone().requires_grad_() for t in (q, k, v))
            fo = median_seconds(partial(ours, q, k, v, mask), repeats, sync)
            ft = median_seconds(partial(theirs, q, k, v, mask), repeats, sync)
            bo = median_seconds(partial(forward_backward, ours, q_, k_, v_, mask), repeats, sync)
            bt = median_seconds(partial(forward_backward, theirs, q_, k_, v_, mask), repeats, sync)
            print(f"{T:>6} {'causal' if masked else 'none':>7} | {fo * 1e3:>11.2f} {ft * 1e3:>12.2f} "
                  f"{fo / ft:>6.2f} | {bo * 1e3:>11.2f} {bt * 1e3:>12.2f} {bo / bt:>6.2f}")


if __name__ == "__main__":
    main()
