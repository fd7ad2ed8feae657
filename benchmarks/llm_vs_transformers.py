"""Our SmolLM2 (chapter 5) against transformers' LlamaForCausalLM on the same GGUF file, on the CPU.

Measured in one run, same machine, same threads:

* load: ours (``load_smollm2``: read the GGUF tables, dequantise with torch, map names, undo the RoPE row
  order) against ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)``;
* prompt processing: one forward pass over a prompt of ``--prompt`` tokens, tokens per second;
* generation with the KV cache: ``--new`` greedy tokens after a short prompt, tokens per second, ours through
  chapter 4's ``generate`` against ``model.generate(do_sample=False)``; the same tokens come out;
* ours once more with torch's fused ``F.scaled_dot_product_attention`` in place of chapter 3's, to show what
  the learner's attention costs;
* the memory-bandwidth bound: every generated token reads every weight once (the output layer reads the
  whole 49,152 x 576 matrix), so tokens/s <= bandwidth / bytes of weights, with the bandwidth measured by
  copying a large tensor on this machine.

    python benchmarks/llm_vs_transformers.py [--threads 2] [--prompt 128] [--new 32]

Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.nn import functional as F

import mmtutor.pretrained.llama as llama_module
from mmtutor.attention import scaled_dot_product_attention as chapter3_attention
from mmtutor.language_model import generate
from mmtutor.pretrained import load_smollm2
from mmtutor.pretrained.gguf_io import SMOLLM2_FILE, smollm2_path
from mmtutor.pretrained.llama import parameter_count


def seconds(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_bandwidth(n_bytes: int = 512 * 2**20) -> float:
    """Bytes per second moved by ``dst.copy_(src)`` (read + write) on a tensor far larger than the caches."""
    src = torch.ones(n_bytes // 4)
    dst = torch.empty_like(src)
    t = seconds(lambda: dst.copy_(src), repeats=5)
    return 2 * n_bytes / t


def torch_attention(q, k, v, mask=None):
    """Chapter 3's signature, torch's fused kernel (no weights returned)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--prompt", type=int, default=128, help="prompt length for prompt processing")
    parser.add_argument("--new", type=int, default=32, help="greedy tokens generated with the cache")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    ours, tokenizer = load_smollm2()
    load_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = AutoModelForCausalLM.from_pretrained(os.path.dirname(smollm2_path()), gguf_file=SMOLLM2_FILE,
                                                  dtype=torch.float32).eval()
    load_theirs = time.perf_counter() - start

    text = ("The history of the printing press begins in the fifteenth century, when movable type changed "
            "how books were made, sold and read across Europe. ") * 20
    long_ids = torch.tensor([tokenizer.encode(text)[:args.prompt]])  # (1, prompt)
    chat = torch.tensor([tokenizer.encode(tokenizer.chat([{"role": "user", "content": "Tell me about Paris."}]))])

    with torch.no_grad():
        torch.testing.assert_close(ours(long_ids), theirs(long_ids).logits, atol=2e-4, rtol=1e-4)
        prefill = [seconds(lambda: ours(long_ids)), seconds(lambda: theirs(long_ids))]

        def ours_generate():
            return generate(ours, chat, args.new, temperature=0)

        def theirs_generate():
            return theirs.generate(chat, attention_mask=torch.ones_like(chat), max_new_tokens=args.new,
                                   min_new_tokens=args.new, do_sample=False, pad_token_id=2)

        assert torch.equal(ours_generate(), theirs_generate()), "the two models generated different tokens"
        decode = [seconds(ours_generate), seconds(theirs_generate)]
        llama_module.scaled_dot_product_attention = torch_attention  # ours, with torch's fused attention
        try:
            fused = [seconds(lambda: ours(long_ids)), seconds(ours_generate)]
        finally:
            llama_module.scaled_dot_product_attention = chapter3_attention

    n_params = parameter_count(ours)
    weight_bytes = 4 * n_params
    bandwidth = copy_bandwidth()
    bound = bandwidth / weight_bytes  # tokens per second if each token only had to read the weights once
    P, N = long_ids.shape[1], args.new
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; SmolLM2-135M-Instruct, "
          f"{n_params / 1e6:.1f} M parameters = {weight_bytes / 2**20:.0f} MiB in float32 "
          f"(the Q4_1 file: {os.path.getsize(smollm2_path()) / 2**20:.0f} MiB)")
    rows = [("load the GGUF file (s)", load_ours, load_theirs, None),
            (f"prompt processing, {P} tokens (tokens/s)", P / prefill[0], P / prefill[1], P / fused[0]),
            (f"generation with KV cache, {N} tokens (tokens/s)", N / decode[0], N / decode[1], N / fused[1])]
    # (generation timings include the chat prompt's forward pass, on both sides)
    header = f"{'':<46} {'ours':>9} {'transformers':>13} {'ours/theirs':>12} {'ours+torch sdpa':>16}"
    print(header)
    print("-" * len(header))
    for name, a, b, c in rows:
        print(f"{name:<46} {a:>9.1f} {b:>13.1f} {a / b:>12.2f} {'' if c is None else f'{c:.1f}':>16}")
    print(f"\nmemory bandwidth (copy of 512 MiB): {bandwidth / 1e9:.1f} GB/s -> bound on generation: "
          f"{bound:.1f} tokens/s ({weight_bytes / 2**20:.0f} MiB of weights read per token); "
          f"ours reaches {N / decode[0] / bound:.0%} of it, transformers {N / decode[1] / bound:.0%}")


if __name__ == "__main__":
    main()
