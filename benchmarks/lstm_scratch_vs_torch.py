"""From-scratch LSTM layer (``mmtutor.context.LSTMLayer``, a Python loop over time) versus ``nn.LSTM``.

Both are measured in one run on the same inputs and weights (checked equal first): forward plus backward
through a sum of the outputs, in tokens (B x T) per second, median of ``--repeats`` timed runs after one
warm-up. The ratio says how many times faster torch's built-in layer is.

    python benchmarks/lstm_scratch_vs_torch.py [--threads N] [--repeats R] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from mmtutor.context import LSTMLayer
from mmtutor.device import get_device

# (batch B, steps T, input size E, hidden size H)
SIZES = [(32, 16, 16, 32), (32, 64, 64, 128), (64, 32, 128, 256), (16, 128, 64, 64)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def forward_backward_seconds(layer: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median wall time of one forward + backward pass of ``layer`` on ``x``."""
    times = []
    for k in range(repeats + 1):
        layer.zero_grad(set_to_none=True)
        _sync(x.device)
        start = time.perf_counter()
        out = layer(x)[0]
        out.sum().backward()
        _sync(x.device)
        if k:  # the first run warms up caches and allocators
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--device", default=None, help="device (default: mmtutor.get_device())")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else get_device()
    print(f"torch {torch.__version__}, device {device}, CPU threads {torch.get_num_threads()}, "
          f"median of {args.repeats} forward+backward passes\n")
    header = (f"{'B':>4} {'T':>4} {'E':>4} {'H':>4} | {'scratch tok/s':>14} {'nn.LSTM tok/s':>14} | "
              f"{'torch / scratch':>15}")
    print(header)
    print("-" * len(header))
    for B, T, E, H in SIZES:
        torch.manual_seed(0)
        reference = nn.LSTM(E, H, batch_first=True)
        scratch = LSTMLayer(E, H)
        scratch.load_state_dict(reference.state_dict())
        reference, scratch = reference.to(device), scratch.to(device)
        x = torch.randn(B, T, E).to(device)
        with torch.no_grad():  # same maths first, then the timing means something
            torch.testing.assert_close(scratch(x)[0], reference(x)[0], atol=1e-5, rtol=1e-4)
        t_scratch = forward_backward_seconds(scratch, x, args.repeats)
        t_torch = forward_backward_seconds(reference, x, args.repeats)
        tokens = B * T
        print(f"{B:4d} {T:4d} {E:4d} {H:4d} | {tokens / t_scratch:14,.0f} {tokens / t_torch:14,.0f} | "
              f"{t_scratch / t_torch:14.2f}x")


if __name__ == "__main__":
    main()
