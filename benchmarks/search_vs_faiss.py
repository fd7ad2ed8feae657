"""Exact and IVF similarity search: mmtutor against faiss, measured in one process.

    python benchmarks/search_vs_faiss.py                 # 1,000,000 x 128, 1,000 queries, k = 10
    python benchmarks/search_vs_faiss.py --n 200000      # a quicker run

Data: unit vectors from ``clustered_vectors`` (10,000 Gaussian clusters, spread 0.6), queries
drawn from the same distribution. Every timing is repeated ``--repeats`` times with ours and
faiss interleaved (so a busy machine slows both alike), and the median is reported. Both sides
use the same number of threads (``--threads``, default: torch's). Recall@10 is measured against
our exact search, which the table first checks against faiss ``IndexFlatIP``.

Rows: ``plain``: ``q @ X.T`` then ``torch.topk`` (100 queries at a time, else the score matrix
would need 4 GB); ``exact``: ``topk_search`` vs ``IndexFlatIP``; ``ivf nprobe=p``: ``IVFIndex``
vs ``IndexIVFFlat`` with the same centroids count and probes (each trains its own k-means).
"""

from __future__ import annotations

import argparse
import statistics
import time

import faiss
import numpy as np
import torch

from mmtutor.similarity import IVFIndex, clustered_vectors, neighbour_recall, normalize, topk_search


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def interleaved(ours, theirs, repeats: int) -> tuple[float, float, object, object]:
    """Median wall times of ``ours()`` and ``theirs()``, run alternately ``repeats`` times each."""
    t_ours, t_theirs, out_ours, out_theirs = [], [], None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out_theirs = theirs()
        t_theirs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out_ours = ours()
        t_ours.append(time.perf_counter() - t0)
    return statistics.median(t_ours), statistics.median(t_theirs), out_ours, out_theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="database vectors")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--n-lists", type=int, default=1024)
    parser.add_argument("--n-probes", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    n, d, k = args.n, args.dim, args.k

    t0 = time.perf_counter()
    data = normalize(clustered_vectors(n + args.queries, d, n_clusters=10_000, spread=0.6, seed=0))
    x, q = data[:n], data[n:].clone()  # x is a view: no second copy of the database
    x_np, q_np = x.numpy(), q.numpy()
    print(f"data: {n:,} x {d} float32 ({x_np.nbytes / 2**20:.0f} MiB), {args.queries:,} queries, k={k}, "
          f"{args.threads} threads, made in {time.perf_counter() - t0:.1f} s")
    print(f"torch {torch.__version__}, numpy {np.__version__}, faiss {faiss.__version__}; "
          f"medians of {args.repeats} interleaved runs\n")
    rows = []  # (method, ours s, faiss s, recall ours, recall faiss)

    # ---- exact search
    flat = faiss.IndexFlatIP(d)
    flat.add(x_np)
    t_ours, t_faiss, (values, truth), (f_values, f_ids) = interleaved(
        lambda: topk_search(q, x, k), lambda: flat.search(q_np, k), args.repeats)
    agree = float((truth.numpy() == f_ids).mean())
    gap = float(np.abs(values.numpy() - f_values).max())
    rows.append(("exact (topk_search vs IndexFlatIP)", t_ours, t_faiss, 1.0,
                 neighbour_recall(torch.from_numpy(f_ids), truth)))
    flat.reset()  # free its copy of the database

    def plain() -> torch.Tensor:
        out = []
        for s in range(0, len(q), 100):  # all 1,000 at once would need a 4 GB score matrix
            out.append(torch.topk(q[s:s + 100] @ x.T, k, dim=1).indices)
        return torch.cat(out)

    t_plain, plain_ids = median_time(plain, max(1, args.repeats // 2))
    rows.append(("plain q @ X.T + torch.topk", t_plain, t_faiss, neighbour_recall(plain_ids, truth), None))

    # ---- IVF
    ivf = IVFIndex(d, args.n_lists)
    t0 = time.perf_counter()
    ivf.train(x)
    ivf.add(x)
    t_build = time.perf_counter() - t0
    f_ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, args.n_lists, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    f_ivf.train(x_np)
    f_ivf.add(x_np)
    t_fbuild = time.perf_counter() - t0
    for p in args.n_probes:
        f_ivf.nprobe = p
        t_ours, t_faiss, (_, ids), (_, f_ids) = interleaved(
            lambda p=p: ivf.search(q, k, n_probe=p), lambda: f_ivf.search(q_np, k), args.repeats)
        rows.append((f"ivf n_lists={args.n_lists} n_probe={p}", t_ours, t_faiss, neighbour_recall(ids, truth),
                     neighbour_recall(torch.from_numpy(f_ids), truth)))

    # ---- the table
    exact_time = rows[0][1]
    print(f"{'method':<38}{'ours s':>9}{'faiss s':>9}{'ours q/s':>10}{'faiss q/s':>10}{'ratio':>7}"
          f"{'R@10 ours':>10}{'R@10 faiss':>11}{'vs our exact':>13}")
    for name, t_o, t_f, r_o, r_f in rows:
        r_f_text = f"{r_f:.3f}" if r_f is not None else "-"
        print(f"{name:<38}{t_o:>9.3f}{t_f:>9.3f}{args.queries / t_o:>10,.0f}{args.queries / t_f:>10,.0f}"
              f"{t_o / t_f:>7.2f}{r_o:>10.3f}{r_f_text:>11}{exact_time / t_o:>12.1f}x")
    print("\nratio = our time / faiss time (lower is better; the plain row is compared with faiss's exact search)")
    print(f"exact: our indices equal faiss's for {agree:.4%} of (query, rank) pairs; largest score gap {gap:.1e}")
    print(f"IVF build (k-means + add): ours {t_build:.1f} s, faiss {t_fbuild:.1f} s; "
          f"list sizes: min {ivf.list_sizes().min()}, max {ivf.list_sizes().max()}")
    good = [r for r in rows[2:] if r[3] >= 0.95]
    if good:
        name, t_o, t_f, r_o, _ = min(good, key=lambda r: r[1])
        print(f"fastest IVF setting with recall@10 >= 0.95: {name}: recall {r_o:.3f}, "
              f"{exact_time / t_o:.1f}x faster than our exact search, {t_o / t_f:.2f}x faiss's time")


if __name__ == "__main__":
    main()
