"""Our byte-level BPE (``mmtutor.tokenizer.BPETokenizer``) versus Hugging Face ``tokenizers`` (Rust).

Both learn a byte-level BPE with the same vocabulary size on the same text (the training documents of gensim's
Lee corpus), with the same GPT-2 pre-tokenisation. Printed: training time, encoding throughput of the held-out
text (a freshly built tokenizer each time, so no cache from training helps), compression (bytes per token), and
how many merges agree (same pair at the same rank, same pair anywhere). The last column divides ours by theirs.

    python benchmarks/bpe_vs_tokenizers.py [--vocab-sizes 512 1024 2048] [--repeats 3]

``tokenizers`` may use several threads; ``RAYON_NUM_THREADS=1`` makes it use one, like ours.
"""

from __future__ import annotations

import argparse
import json
import time

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mmtutor.lm_tasks import load_lee_documents, split_documents
from mmtutor.tokenizer import BPETokenizer, bytes_to_unicode


def train_hf(text: str, vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator([text], trainer)
    return tok


def hf_merges_as_bytes(tok: Tokenizer) -> list[tuple[bytes, bytes]]:
    u2b = {c: b for b, c in bytes_to_unicode().items()}
    merges = json.loads(tok.to_str())["model"]["merges"]
    pairs = [m if isinstance(m, list) else m.split(" ") for m in merges]
    return [(bytes(u2b[c] for c in a), bytes(u2b[c] for c in b)) for a, b in pairs]


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def time_fresh_encode(repeats: int, make, encode):
    """Best time of ``encode`` on a tokenizer just built by ``make`` (its cache empty), building not timed."""
    times, ids = [], None
    for _ in range(repeats):
        tokenizer = make()
        start = time.perf_counter()
        ids = encode(tokenizer)
        times.append(time.perf_counter() - start)
    return min(times), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs for each time")
    args = parser.parse_args()
    train_text, _, test_text = split_documents(load_lee_documents())
    n_bytes = len(test_text.encode())
    print(f"training text {len(train_text.encode()):,} bytes, held-out text {n_bytes:,} bytes; best of {args.repeats}")
    print(f"{'vocab':>6} {'':>22} {'ours':>10} {'tokenizers':>11} {'ours/theirs':>12}")
    for V in args.vocab_sizes:
        t_ours, ours = best_of(args.repeats, lambda V=V: BPETokenizer.train(train_text, V))
        t_hf, hf = best_of(args.repeats, lambda V=V: train_hf(train_text, V))
        e_ours, ids_ours = time_fresh_encode(args.repeats, lambda ours=ours: BPETokenizer(ours.merges),
                                             lambda t: t.encode(test_text))
        e_hf, ids_hf = time_fresh_encode(args.repeats, lambda hf=hf: Tokenizer.from_str(hf.to_str()),
                                         lambda t: t.encode(test_text).ids)
        assert ours.decode(ids_ours) == test_text and hf.decode(ids_hf) == test_text
        mine = [(ours.vocab[a], ours.vocab[b]) for a, b in ours.merges]
        theirs = hf_merges_as_bytes(hf)
        same_rank = sum(a == b for a, b in zip(mine, theirs, strict=False))
        rows = [("training time (s)", t_ours, t_hf, "{:10.3f}"),
                ("encoding (MB/s)", n_bytes / e_ours / 1e6, n_bytes / e_hf / 1e6, "{:10.3f}"),
                ("bytes per token", n_bytes / len(ids_ours), n_bytes / len(ids_hf), "{:10.3f}")]
        for i, (name, a, b, fmt) in enumerate(rows):
            print(f"{V if i == 0 else '':>6} {name:>22} {fmt.format(a)} {fmt.format(b):>11} {a / b:11.2f}x")
        print(f"{'':>6} {'merges agreeing':>22} same rank {same_rank}/{len(mine)}, "
              f"same pair anywhere {len(set(mine) & set(theirs))}/{len(mine)}")


if __name__ == "__main__":
    main()
