"""Exact and IVF similarity search: mmtutor against faiss, measured in one process.

    python benchmarks/search_vs_faiss.py                 # 1,000,000 x 128, 1,000 queries, k = 10
    python benchmarks/search_vs_faiss.py --n 200000      # a quicker run

Data: unit vectors from ``clustered_vectors`` (10,000 Gaussian clusters, spread 0.6), queries
drawn from the same distribution. Every timing is repeated ``--repeats`` times with ours and
faiss interleaved (so a busy machine slows both alike), and the median is reported. Both sides
use the same number of threads (``--threads``, default: torch's), except on macOS, where the OpenMP
guard (``mmtutor._openmp``) keeps faiss on one. Recall@10 is measured against
our exact search, which the table first checks against faiss ``IndexFlatIP``.

Rows: ``plain``: ``q @ X.T`` then ``torch.topk`` (100 queries at a time, else the score matrix
would need 4 GB); ``exact``: ``topk_search`` vs ``IndexFlatIP``; ``ivf nprobe=p``: ``IVFIndex``
vs ``IndexIVFFlat`` with the same centroids count and probes (each trains its own k-means).

First, the matrix-product rates behind the exact search (chapter 6's "under the hood"): NumPy's BLAS,
which ``topk_search`` calls on its tiles, against torch's, on one tile (1,024 rows x 256 queries, one
thread, as each of ``topk_search``'s threads computes it) and on one large product (all threads).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from mmtutor._openmp import import_faiss
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


def blas_rates(x: np.ndarray, q: np.ndarray, repeats: int) -> list[tuple[str, float, float]]:
    """GFLOP/s of NumPy's and torch's matrix products on a tile (one thread) and on a large product."""
    rows = []
    for name, a, b, threads in [("tile 1024 x 256, 1 thread", x[:1024], q[:256], 1),
                                (f"{min(len(x), 100_000):,} x {len(q):,}, all threads", x[:100_000], q, None)]:
        flops = 2 * a.shape[0] * b.shape[0] * a.shape[1]
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        inner = max(1, int(2e9 // flops))  # a few GFLOP per timing, so that small products are timed reliably
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        with threadpool_limits(limits=threads, user_api="blas"):
            t_np = median_time(lambda a=a, b=b, n=inner: [a @ b.T for _ in range(n)], repeats)[0] / inner
            t_torch = median_time(lambda a=ta, b=tb, n=inner: [a @ b.T for _ in range(n)], repeats)[0] / inner
        torch.set_num_threads(previous)
        rows.append((name, flops / t_np / 1e9, flops / t_torch / 1e9))
    return rows


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
    faiss = import_faiss()  # guarded: torch and faiss each bring an OpenMP runtime (mmtutor/_openmp.py)
    if faiss is None:
        raise SystemExit("faiss is not installed: nothing to compare with")
    if faiss.omp_get_max_threads() > 1:  # the guard keeps faiss on one thread where the runtimes clash (macOS)
        faiss.omp_set_num_threads(args.threads)
    n, d, k = args.n, args.dim, args.k

    t0 = time.perf_counter()
    data = normalize(clustered_vectors(n + args.queries, d, n_clusters=10_000, spread=0.6, seed=0))
    x, q = data[:n], data[n:].clone()  # x is a view: no second copy of the database
    x_np, q_np = x.numpy(), q.numpy()
    print(f"data: {n:,} x {d} float32 ({x_np.nbytes / 2**20:.0f} MiB), {args.queries:,} queries, k={k}, threads: "
          f"torch {torch.get_num_threads()}, faiss {faiss.omp_get_max_threads()}; "
          f"made in {time.perf_counter() - t0:.1f} s")
    print(f"torch {torch.__version__}, numpy {np.__version__}, faiss {faiss.__version__}; "
          f"medians of {args.repeats} interleaved runs\n")
    blas = ", ".join(sorted({f"{i['internal_api']} {i.get('version') or ''}".strip() for i in threadpool_info()
                             if i["user_api"] == "blas" and "numpy" in i["filepath"]})) or "unknown"
    torch_blas = "MKL" if torch.backends.mkl.is_available() else "not MKL"
    print(f"matrix products, GFLOP/s (NumPy's BLAS: {blas}; torch's: {torch_blas})")
    for name, g_np, g_torch in blas_rates(x_np, q_np, args.repeats):
        print(f"  {name:<34} NumPy {g_np:7.1f}   torch {g_torch:7.1f}   NumPy / torch {g_np / g_torch:.2f}")
    print()
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
