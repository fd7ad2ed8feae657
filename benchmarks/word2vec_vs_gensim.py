"""Our skip-gram with negative sampling (``mmtutor.word2vec.train_sgns``) versus gensim's ``Word2Vec``.

Both train on the same tokens of gensim's Lee background corpus (``mmtutor.data.text.load_lee_corpus``) with the
same settings (dimension, window, negatives, subsampling, minimum count), once per seed, in one run. The epochs
default to chapter 1's: 10 for ours (Adam on batches), 20 for gensim (SGD with a step decaying to zero, which
needs them). Speed is corpus words times epochs per second of training (gensim's own measure); quality is the
Spearman correlation with WordSim-353 and SimLex-999 over the pairs in the vocabulary (the OOV rate is printed,
and is the same for both: the vocabularies are equal). The ratio column divides ours by gensim's. The seeds'
spread decides what the quality columns support: the difference of the mean WordSim-353 scores is printed with
its standard error, and called a difference only when it exceeds twice that.

    python benchmarks/word2vec_vs_gensim.py [--seeds 5] [--epochs 10] [--gensim-epochs 20] [--threads 1] [--device cpu]

gensim runs one worker thread; ours defaults to one torch thread, the fair comparison on a CPU.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import replace

import gensim
import torch
from gensim.models import Word2Vec

from mmtutor.data.text import Vocabulary, load_lee_corpus, load_word_pairs
from mmtutor.device import get_device
from mmtutor.word2vec import SGNSConfig, evaluate_word_pairs, train_sgns

MIN_COUNT = 3  # words seen fewer times are left out of both vocabularies


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_ours(sentences, config: SGNSConfig, device: torch.device) -> tuple[torch.Tensor, dict[str, int], float]:
    vocab = Vocabulary.build(sentences, min_count=MIN_COUNT)
    ids = [vocab.encode(s, drop_unknown=True) for s in sentences]
    _sync(device)
    start = time.perf_counter()
    model, _ = train_sgns(ids, len(vocab), config, device=device, progress=False, verbose=False)
    _sync(device)
    return model.vectors.cpu(), vocab.stoi, time.perf_counter() - start


def run_gensim(sentences, config: SGNSConfig) -> tuple[torch.Tensor, list[str], float]:
    start = time.perf_counter()
    model = Word2Vec(sentences, vector_size=config.embed_size, window=config.window, negative=config.negatives,
                     sample=config.subsample, epochs=config.epochs, min_count=MIN_COUNT, sg=1, workers=1,
                     seed=config.seed)
    seconds = time.perf_counter() - start
    return torch.tensor(model.wv.vectors), model.wv.index_to_key, seconds


def _cell(values: list[float], fmt: str) -> str:
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:{fmt}} +- {spread:{fmt}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="training runs per implementation (seeds 0..n-1)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the corpus for ours (chapter 1: 10)")
    parser.add_argument("--gensim-epochs", type=int, default=20, help="passes over the corpus for gensim (20)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for ours (default 1)")
    parser.add_argument("--device", default=None, help="device for ours (default: mmtutor.get_device())")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else get_device()

    sentences = load_lee_corpus()
    n_words = sum(map(len, sentences))
    wordsim, simlex = load_word_pairs("wordsim353"), load_word_pairs("simlex999")
    base = replace(SGNSConfig(), epochs=args.epochs)
    gensim_epochs = args.gensim_epochs
    print(f"torch {torch.__version__} (device {device}, {torch.get_num_threads()} CPU threads), gensim "
          f"{gensim.__version__} (1 worker); Lee corpus: {len(sentences)} documents, {n_words:,} words")
    print(f"settings: dim {base.embed_size}, window {base.window}, negatives {base.negatives}, subsample "
          f"{base.subsample}, min_count {MIN_COUNT}; epochs: ours {base.epochs}, gensim {gensim_epochs}; ours: Adam lr "
          f"{base.lr}, batch {base.batch_size}; mean +- std over seeds 0..{args.seeds - 1}\n")

    measured: dict[str, dict[str, list[float]]] = {"ours": {}, "gensim": {}}
    oov = {}
    for seed in range(args.seeds):
        config = replace(base, seed=seed)
        runs = (("ours", run_ours(sentences, config, device), config.epochs),
                ("gensim", run_gensim(sentences, replace(config, epochs=gensim_epochs)), gensim_epochs))
        for name, (E, vocab, seconds), epochs in runs:
            ws, sl = evaluate_word_pairs(E, vocab, wordsim), evaluate_word_pairs(E, vocab, simlex)
            oov[name] = (ws.oov_rate, sl.oov_rate)
            for key, value in (("words/s", n_words * epochs / seconds), ("seconds", seconds),
                               ("WordSim-353", ws.spearman), ("SimLex-999", sl.spearman)):
                measured[name].setdefault(key, []).append(value)
            print(f"  seed {seed} {name:6s}: {seconds:5.1f} s, WordSim-353 {ws.spearman:.3f}, "
                  f"SimLex-999 {sl.spearman:.3f}")
    assert oov["ours"] == oov["gensim"], "the two vocabularies should cover the same pairs"
    print(f"\nOOV rate (both): WordSim-353 {oov['ours'][0]:.0%}, SimLex-999 {oov['ours'][1]:.0%}\n")

    header = f"{'measure':22s} | {'ours':>18s} | {'gensim':>18s} | {'ours / gensim':>13s} | {'ours - gensim':>13s}"
    print(header)
    print("-" * len(header))
    for key, fmt in (("words/s", ",.0f"), ("seconds", ".2f"), ("WordSim-353", ".3f"), ("SimLex-999", ".3f")):
        ours, peer = measured["ours"][key], measured["gensim"][key]
        ratio = statistics.mean(ours) / statistics.mean(peer)
        # a ratio of two correlations near zero means nothing: there the difference is the figure to read
        ratio_text = f"{ratio:.2f}" if "Sim" not in key or abs(statistics.mean(peer)) >= 0.1 else "n/a"
        diff_text = f"{statistics.mean(ours) - statistics.mean(peer):+.3f}" if "Sim" in key else ""
        print(f"{key + (' (Spearman)' if 'Sim' in key else ''):22s} | {_cell(ours, fmt):>18s} | "
              f"{_cell(peer, fmt):>18s} | {ratio_text:>13s} | {diff_text:>13s}")
    ours_ws, gensim_ws = measured["ours"]["WordSim-353"], measured["gensim"]["WordSim-353"]
    gap = statistics.mean(ours_ws) - statistics.mean(gensim_ws)
    if len(ours_ws) > 1:
        se = math.sqrt(statistics.variance(ours_ws) / len(ours_ws) + statistics.variance(gensim_ws) / len(gensim_ws))
        verdict = "a difference" if abs(gap) > 2 * se else "not a difference: within twice its standard error"
        print(f"\nWordSim-353, ours minus gensim, mean over {len(ours_ws)} seeds: {gap:+.3f}, standard error {se:.3f}: "
              f"{verdict}")
    else:
        print(f"\nWordSim-353, ours minus gensim: {gap:+.3f} from one seed (no spread: run --seeds 3 or more)")

if __name__ == "__main__":
    main()
