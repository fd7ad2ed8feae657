r"""Chapter 6: an inverted-file index (IVF) and product quantisation (PQ), drawn on seeded 2-D data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from .. import _checks
from ._drawing import INK, MUTED, ROLES, SMALL, TITLE, arrow, canvas, cell, label, light, tag
from ._geometry import lloyd, nearest, voronoi_cell

# one colour per cell / subspace (colour-blind-safe first six, then two more that stay distinct)
CELLS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D31", "#7F3C8D"]


def ivf_diagram(n_lists: int = 8, n_probe: int = 2, n_points: int = 400, seed: int = 0,
                ax: Axes | None = None) -> Figure:
    r"""An inverted-file index on 2-D points (chapter 6).

    ``n_points`` seeded points (``numpy.random.default_rng(seed)``, six Gaussian blobs) are split into
    ``n_lists`` Voronoi cells around k-means centroids; a query is compared with the centroids, and only
    the ``n_probe`` cells of the nearest centroids are searched (coloured); the other cells are skipped
    (grey). The query is the first of 2,000 seeded candidates whose exact nearest neighbour lies in its
    second-nearest cell (one probe misses it, two find it); the title says which cell of the ranking holds
    the neighbour and whether ``n_probe`` finds it.
    ``n_lists`` in 2..8, ``n_probe`` in 1..n_lists. Draws on ``ax`` if given; returns the Figure.
    """
    _checks.positive_int("n_lists", n_lists, minimum=2)
    _checks.positive_int("n_probe", n_probe)
    _checks.positive_int("n_points", n_points, minimum=4 * n_lists)
    _checks.positive_int("seed", seed, minimum=0)
    if n_lists > len(CELLS) or n_probe > n_lists:
        raise ValueError(f"need 2 <= n_lists <= {len(CELLS)} and n_probe <= n_lists, got n_lists={n_lists}, "
                         f"n_probe={n_probe}")
    rng = np.random.default_rng(seed)
    blobs = rng.uniform(-1, 1, size=(6, 2))  # (6, 2)
    x = blobs[rng.integers(6, size=n_points)] + 0.28 * rng.standard_normal((n_points, 2))  # (N, 2)
    centroids = lloyd(x, n_lists, rng)  # (n_lists, 2)
    cell_of = nearest(x, centroids)  # (N,)

    # a query whose nearest neighbour sits in its second-nearest cell (the case n_probe is for)
    candidates = rng.uniform(x.min(0), x.max(0), size=(2000, 2))  # (2000, 2)
    order = ((candidates[:, None] - centroids[None]) ** 2).sum(-1).argsort(1)  # (2000, n_lists)
    nn = nearest(candidates, x)  # (2000,)
    good = np.flatnonzero(cell_of[nn] == order[:, 1])
    pick = good[0] if len(good) else 0
    q, ranking, nn_index = candidates[pick], order[pick], nn[pick]
    probed = set(ranking[:n_probe].tolist())
    found = cell_of[nn_index] in probed

    lo, hi = x.min(0) - 0.25, x.max(0) + 0.25
    if ax is None:  # 7 inches wide, as tall as the data's aspect needs, plus the title and the legend
        plot_h = 6.65 * (hi[1] - lo[1]) / (hi[0] - lo[0])
        fig, ax = plt.subplots(figsize=(7, plot_h + 1.7))
        fig.subplots_adjust(left=0.025, right=0.975, top=1 - 0.8 / (plot_h + 1.7), bottom=0.9 / (plot_h + 1.7))
    fig = ax.figure
    for j in range(n_lists):
        ax.add_patch(Polygon(voronoi_cell(centroids, j, lo, hi), closed=True, lw=1.0, edgecolor=light(INK, 0.5),
                             facecolor=light(CELLS[j], 0.28) if j in probed else light("#9ca3af", 0.22),
                             zorder=0))
    for j in range(n_lists):
        mine = cell_of == j
        ax.scatter(x[mine, 0], x[mine, 1], s=14, color=CELLS[j], alpha=1.0 if j in probed else 0.3, lw=0)
        ax.scatter(*centroids[j], s=110, marker="X", color=INK if j in probed else MUTED, edgecolor="white",
                   lw=1.2, zorder=4)
    for j in ranking[:n_probe]:
        ax.plot(*zip(q, centroids[j], strict=True), color=INK, ls="--", lw=1.2, zorder=3)
    ax.scatter(*x[nn_index], s=170, facecolor="none", edgecolor=ROLES["neg"][1], lw=2, zorder=5)
    ax.scatter(*q, s=320, marker="*", color=ROLES["neg"][1], edgecolor="white", lw=1, zorder=6)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xticks=[], yticks=[], aspect="equal")
    ax.set_title(f"IVF: search only the n_probe = {n_probe} of {n_lists} cells nearest to the query\n"
                 f"its nearest neighbour is in cell {int(np.flatnonzero(ranking == cell_of[nn_index])[0]) + 1} of "
                 f"the ranking: {'found' if found else 'missed'} with n_probe = {n_probe}", fontsize=12)
    handles = [Line2D([], [], marker="*", ls="", color=ROLES["neg"][1], markersize=15, label="query"),
               Line2D([], [], marker="X", ls="", color=INK, markersize=10, label="centroid (probed cell)"),
               Line2D([], [], marker="X", ls="", color=MUTED, markersize=10, label="centroid (skipped cell)"),
               Line2D([], [], marker="o", ls="", markerfacecolor="none", markeredgecolor=ROLES["neg"][1],
                      markersize=11, markeredgewidth=2, label="exact nearest neighbour"),
               Patch(facecolor=light(CELLS[ranking[0]], 0.28), edgecolor=MUTED, label="probed cell"),
               Patch(facecolor=light("#9ca3af", 0.22), edgecolor=MUTED, label="skipped cell")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=3, fontsize=SMALL,
              frameon=False)
    return fig


def pq_diagram(seed: int = 0) -> Figure:
    r"""Product quantisation of one vector (chapter 6).

    A $D = 8$ vector $x$ is split into $m = 4$ subvectors $x^{(j)}$ of 2 numbers; each subspace has a
    codebook $C_j$ of 256 centroids (k-means on 2,000 seeded training vectors,
    ``numpy.random.default_rng(seed)``); each subvector is replaced by the id of its nearest centroid, so
    the code of $x$ is $m = 4$ bytes instead of $8 \times 4 = 32$. For a query $q$, the look-up tables
    $T_j[c] = \Vert q^{(j)} - C_j[c] \Vert^2$ ($m \times 256$, computed once per query) give
    $\Vert q - x \Vert^2 \approx \sum_j T_j[\mathrm{code}_j]$: $m$ look-ups and additions per database
    vector. Every number drawn is computed. Returns the Figure (10 x 7.6 inches).
    """
    _checks.positive_int("seed", seed, minimum=0)
    D, m, k = 8, 4, 256
    rng = np.random.default_rng(seed)
    modes = rng.standard_normal((12, D))  # (12, D) clustered training data
    train = modes[rng.integers(12, size=2000)] + 0.45 * rng.standard_normal((2000, D))  # (2000, D)
    books = [lloyd(train[:, 2 * j:2 * j + 2], k, rng, iters=8) for j in range(m)]  # m x (k, 2)
    x = train[0]  # (D,) a database vector
    q = x + 0.35 * rng.standard_normal(D)  # (D,) a query near it
    code = [int(nearest(x[None, 2 * j:2 * j + 2], books[j])[0]) for j in range(m)]
    tables = np.stack([((q[2 * j:2 * j + 2] - books[j]) ** 2).sum(1) for j in range(m)])  # (m, k)
    approx = sum(tables[j, code[j]] for j in range(m))
    exact = float(((q - x) ** 2).sum())

    W, H = 10, 7.6
    fig, ax = canvas(W, H)
    tag(ax, (0.5, H - 0.3), "ch. 6")
    label(ax, (0.9, H - 0.3), "Product quantisation: 8 numbers become 4 bytes", fontsize=TITLE, ha="left",
          weight="bold")
    # x, split into m subvectors of D / m = 2 numbers
    cw = 0.62
    x0 = (W - D * cw - (m - 1) * 0.25) / 2
    label(ax, (x0 - 0.15, H - 0.95), "$x$", ha="right", fontsize=14)
    centres = []
    for j in range(m):
        left = x0 + j * (2 * cw + 0.25)
        for i in range(2):
            cell(ax, left + i * cw, H - 1.15, cw, 0.4, light(CELLS[j], 0.35), text=f"{x[2 * j + i]:.2f}")
        centres.append(left + cw)
        label(ax, (left + cw, H - 1.4), f"$x^{{({j + 1})}}$", va="top")

    # one codebook per subspace: its 256 centroids, the subvector, the chosen centroid
    size, gap = 2.05, 0.33
    left0 = (W - m * size - (m - 1) * gap) / 2
    bottom = 2.85
    for j in range(m):
        left = left0 + j * (size + gap)
        arrow(ax, (centres[j], H - 1.95), (left + size / 2, bottom + size + 0.35), color=CELLS[j])
        sub = fig.add_axes((left / W, bottom / H, size / W, size / H))
        sub.scatter(books[j][:, 0], books[j][:, 1], s=5, color="#b8bcc4", lw=0)
        c = books[j][code[j]]
        sub.scatter(*c, s=170, facecolor="none", edgecolor=INK, lw=1.6)
        sub.scatter(*x[2 * j:2 * j + 2], s=60, marker="*", color=CELLS[j], zorder=3)
        sub.set(xticks=[], yticks=[], aspect="equal", adjustable="datalim")
        for spine in sub.spines.values():
            spine.set_edgecolor(MUTED)
        sub.set_title(f"$C_{{{j + 1}}}$: 256 centroids", fontsize=SMALL, pad=4)
        arrow(ax, (left + size / 2, bottom - 0.05), (left + size / 2, 2.35), color=CELLS[j])
        cell(ax, left + size / 2 - 0.45, 1.95, 0.9, 0.42, light(CELLS[j], 0.35), text=f"{code[j]}",
             fontsize=12)
    label(ax, (W / 2, 1.72), "the code of $x$: 4 bytes, one centroid id (0-255) per subspace; $x$ itself takes "
          "8 $\\times$ 4 = 32 bytes", va="top")

    # asymmetric distance with look-up tables
    terms = " + ".join(f"{tables[j, code[j]]:.2f}" for j in range(m))
    label(ax, (W / 2, 1.15), "query $q$: tables $T_j[c] = \\Vert q^{(j)} - C_j[c] \\Vert^2$ "
          "(4 $\\times$ 256 numbers, once per query)", fontsize=SMALL)
    label(ax, (W / 2, 0.72), f"$\\Vert q - x \\Vert^2 \\approx \\sum_j T_j[\\mathrm{{code}}_j]$ = {terms} = "
          f"{approx:.2f}   (exact: {exact:.2f})", fontsize=12)
    label(ax, (W / 2, 0.3), "4 look-ups and 3 additions per database vector, instead of 8 multiply-adds",
          color=MUTED)
    return fig
