r"""Our search engine against an earlier revision of itself, both imported into one process.

    git worktree add /tmp/before <commit>                 # the revision to compare with
    python benchmarks/search_before_after.py /tmp/before  # 1,000,000 x 128, 1,000 queries, k = 10

Two runs of ``search_vs_faiss.py`` minutes apart differ by 10-30% on a shared machine, more than a
refactoring should change; here the two versions search the same index, interleaved, ``--repeats``
times, so a busy moment slows both alike. The earlier revision's package is loaded under the name
``mmtutor_before``; its ``IVFIndex`` gets the state of ours (the same centroids and lists), and the
two must return the same neighbours before they are timed. Rows: ``topk_search`` (exact) and
``IVFIndex.search`` at several ``n_probe``; ratio = ours now / ours before (lower is better).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

import mmtutor
from mmtutor.similarity import IVFIndex, clustered_vectors, normalize, topk_search


def load_revision(checkout: Path):
    """The package of another checkout, imported as ``mmtutor_before`` beside today's ``mmtutor``."""
    init = checkout / "mmtutor" / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"{checkout} holds no mmtutor/__init__.py: pass the root of a checkout")
    spec = importlib.util.spec_from_file_location("mmtutor_before", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["mmtutor_before"] = module
    spec.loader.exec_module(module)
    return module


def before_after_parser(doc: str, repeats: int) -> argparse.ArgumentParser:
    """The arguments every before/after benchmark takes: the earlier checkout, ``--repeats``, ``--threads``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="root of a checkout of the earlier revision")
    parser.add_argument("--repeats", type=int, default=repeats, help="timings of each side, interleaved")
    parser.add_argument("--threads", type=int, default=2)
    return parser


def main() -> None:
    parser = before_after_parser(__doc__, repeats=7)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--n-lists", type=int, default=1024)
    parser.add_argument("--n-probes", type=int, nargs="+", default=[8, 32, 64])
    args = parser.parse_args()
    load_revision(args.before)
    old_similarity = importlib.import_module("mmtutor_before.similarity")
    torch.set_num_threads(args.threads)

    data = normalize(clustered_vectors(args.n + args.queries, args.dim, n_clusters=10_000, spread=0.6, seed=0))
    x, queries = data[:args.n], data[args.n:]  # (N, D), (Q, D): the data of search_vs_faiss.py
    ours = IVFIndex(args.dim, args.n_lists).train(x[:100_000]).add(x)
    before = object.__new__(old_similarity.IVFIndex)
    before.__dict__.update(ours.__dict__)  # the same trained index, read by the earlier code
    for p in args.n_probes:
        assert torch.equal(ours.search(queries, args.k, p)[1], before.search(queries, args.k, p)[1])
    assert torch.equal(topk_search(queries, x, args.k)[1], old_similarity.topk_search(queries, x, args.k)[1])

    rows = {"exact": (lambda: topk_search(queries, x, args.k),
                      lambda: old_similarity.topk_search(queries, x, args.k))}
    for p in args.n_probes:
        rows[f"ivf n_probe={p}"] = (lambda p=p: ours.search(queries, args.k, p),
                                    lambda p=p: before.search(queries, args.k, p))
    times = {name: ([], []) for name in rows}
    for r in range(args.repeats):  # interleaved: now, before; before, now; ... (no side always goes first)
        for name, pair in rows.items():
            turns = list(zip(pair, times[name], strict=True))
            for run, store in turns if r % 2 == 0 else turns[::-1]:
                start = time.perf_counter()
                run()
                store.append(time.perf_counter() - start)
    print(f"mmtutor {mmtutor.__version__} now vs {args.before}; {args.n:,} x {args.dim}, {args.queries:,} queries, "
          f"k = {args.k}, {args.threads} threads, median of {args.repeats}")
    print(f"{'':18} {'now s':>8} {'before s':>9} {'ratio':>6}")
    for name, (now, then) in times.items():
        a, b = statistics.median(now), statistics.median(then)
        print(f"{name:18} {a:8.3f} {b:9.3f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
