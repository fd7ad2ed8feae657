r"""Chapter 6: k-means (Lloyd's algorithm), the cells of the inverted file and the codebooks of product quantisation.

$$z_i = \arg\min_l \lVert x_i - c_l\rVert^2 \quad\text{(assign)},\qquad
c_l = \frac{1}{\lvert\{i: z_i = l\}\rvert}\sum_{i: z_i = l} x_i \quad\text{(update)}$$
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._search import EPS, as_numpy, int_in, matrix, nearest_centroid, unit_rows


def _cluster_sums(xs: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    r"""$\sum_{i: z_i = l} x_i$ for every cluster $l$: ``(n_clusters, D)``, the rows added in index order.

    ``index_add_`` runs on one torch thread here: on several, its thread overhead costs far more than these few
    additions (measured: a (10,000, 16) sum into 256 rows took 250 times as long on 2 threads of a busy 2-core
    machine as on 1); on one thread the rows are added in index order, the same sums bit for bit.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sums = torch.zeros(n_clusters, xs.shape[1]).index_add_(0, torch.from_numpy(labels), torch.from_numpy(xs))
    finally:
        torch.set_num_threads(previous)
    return sums.numpy()


def kmeans(x: Tensor, n_clusters: int, n_iter: int = 10, *, spherical: bool = True, seed: int = 0,
           max_points_per_cluster: int = 256) -> Tensor:
    r"""Lloyd's k-means on the rows of ``x (N, D)``; returns the centroids ``(n_clusters, D)`` (float32).

    $$z_i = \arg\min_l \lVert x_i - c_l\rVert^2, \qquad c_l = \mathrm{mean}\{x_i : z_i = l\}$$

    Alternate the two steps ``n_iter`` times: assign each point to its nearest centroid, move each centroid
    to the mean of its points. ``spherical=True`` (for cosine) normalises the points and the means and
    assigns by the largest $x_i\cdot c_l$. Starts from ``n_clusters`` distinct random points (``seed``); an
    empty cluster takes the point that fits worst. Like faiss, trains on at most
    ``max_points_per_cluster * n_clusters`` points.

    Raises ``TypeError``/``ValueError`` for a non-float or empty ``x``, a row that is inf or NaN, or
    ``n_clusters`` outside ``[1, N]``, ``n_iter < 0``.
    """
    matrix("kmeans: x", x)
    n_clusters, n_iter = int_in("kmeans: n_clusters", n_clusters, 1, x.shape[0]), int_in("kmeans: n_iter", n_iter, 0)
    rng = np.random.default_rng(seed)
    xs = as_numpy(x)
    if len(xs) > max_points_per_cluster * n_clusters:
        xs = xs[np.sort(rng.choice(len(xs), max_points_per_cluster * n_clusters, replace=False))]
    if spherical:
        xs = unit_rows(xs, EPS, "kmeans: x")
    c = xs[rng.choice(len(xs), n_clusters, replace=False)].copy()  # (K, D)
    for _ in range(n_iter):
        labels, fit = nearest_centroid(xs, c, spherical)  # (N,) z_i, and the score of x_i against c_{z_i}
        counts = np.bincount(labels, minlength=n_clusters)
        sums = _cluster_sums(xs, labels, n_clusters)  # (K, D)
        c = sums / np.maximum(counts, 1)[:, None]  # (K, D): the mean of each cluster
        empty = np.flatnonzero(counts == 0)
        if len(empty):  # re-seed empty clusters with the worst-fitting points
            c[empty] = xs[np.argsort(fit, kind="stable")[: len(empty)]]
        if spherical:
            c = unit_rows(c, EPS, "kmeans: centroid")
    return torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
