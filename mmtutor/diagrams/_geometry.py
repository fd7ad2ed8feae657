r"""The small geometry behind the search diagrams (chapter 6): k-means, nearest centroids, Voronoi cells.

Plain numpy on a few hundred 2-D points: the diagrams need no torch, no faiss and no workbook data.
"""

from __future__ import annotations

import numpy as np


def lloyd(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding: ``x (N, D) -> centroids (k, D)``."""
    c = np.empty((k, x.shape[1]))
    c[0] = x[rng.integers(len(x))]
    d2 = ((x - c[0]) ** 2).sum(1)  # (N,) squared distance to the nearest seed so far
    for j in range(1, k):  # k-means++: the next seed with probability proportional to d^2
        c[j] = x[rng.choice(len(x), p=d2 / d2.sum())]
        d2 = np.minimum(d2, ((x - c[j]) ** 2).sum(1))
    for _ in range(iters):
        assign = nearest(x, c)  # (N,)
        counts = np.bincount(assign, minlength=k)  # (k,)
        sums = np.stack([np.bincount(assign, weights=x[:, d], minlength=k) for d in range(x.shape[1])], 1)
        c[counts > 0] = sums[counts > 0] / counts[counts > 0, None]  # empty clusters keep their seed
    return c


def nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``c (k, D)`` for each row of ``x (N, D)``."""
    d2 = (x ** 2).sum(1)[:, None] - 2 * x @ c.T + (c ** 2).sum(1)[None]  # (N, k)
    return d2.argmin(1)


def voronoi_cell(centroids: np.ndarray, j: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r"""The polygon ``(P, 2)`` of points of the box [lo, hi] nearer to centroid ``j`` than to any other.

    The box clipped by one half-plane per other centroid (Sutherland-Hodgman):
    keep $p$ with $(p - m) \cdot (c_k - c_j) \le 0$, $m = (c_j + c_k) / 2$.
    """
    poly = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    for k in range(len(centroids)):
        if k == j or len(poly) == 0:
            continue
        n = centroids[k] - centroids[j]
        offset = n @ (centroids[j] + centroids[k]) / 2
        inside = poly @ n <= offset  # (P,)
        out = []
        for a, b, a_in, b_in in zip(poly, np.roll(poly, -1, 0), inside, np.roll(inside, -1), strict=True):
            if a_in:
                out.append(a)
            if a_in != b_in:  # the edge crosses the bisector
                t = (offset - a @ n) / ((b - a) @ n)
                out.append(a + t * (b - a))
        poly = np.array(out)
    return poly
