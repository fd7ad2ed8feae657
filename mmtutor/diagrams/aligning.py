r"""Chapter 7: CLIP's two towers and its N x N similarity matrix."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Polygon, Rectangle

from .. import _checks
from ._drawing import INK, MUTED, ROLES, SMALL, TITLE, arrow, box, canvas, cell, label, tag

# the scenes world: (colour name, matplotlib colour, shape) per pair
_PAIRS = [("red", "#d62728", "circle"), ("blue", "#1f77b4", "square"), ("green", "#2ca02c", "triangle"),
          ("yellow", "#e6b800", "circle"), ("purple", "#9467bd", "square"), ("orange", "#ff7f0e", "triangle")]


def _picture(ax: Axes, x: float, y: float, side: float, color: str, shape: str) -> None:
    """A tiny scene: one coloured shape in a framed square centred at (x, y)."""
    ax.add_patch(Rectangle((x - side / 2, y - side / 2), side, side, facecolor="white", edgecolor=MUTED, lw=1))
    r = side * 0.3
    if shape == "circle":
        patch = Circle((x, y), r, color=color)
    elif shape == "square":
        patch = Rectangle((x - r, y - r), 2 * r, 2 * r, color=color)
    else:
        patch = Polygon([(x - r, y - r * 0.85), (x + r, y - r * 0.85), (x, y + r)], color=color)
    ax.add_patch(patch)


def clip_diagram(n: int = 4, ax: Axes | None = None) -> Figure:
    r"""Contrastive image-text training, one batch of $N$ pairs (chapter 7).

    An image tower $f$ and a text tower $g$ map the batch to unit vectors
    $\vec u_i = f(x_i) / \Vert f(x_i) \Vert$ and $\vec t_j = g(y_j) / \Vert g(y_j) \Vert$; the logits
    $s\, \vec u_i \cdot \vec t_j$ ($s$ = ``logit_scale``) fill an $N \times N$ matrix whose diagonal holds
    the true pairs (targets ``arange(N)``) and whose other $N^2 - N$ entries are in-batch negatives; the
    loss is the mean of the cross-entropy over each row (image $\to$ text) and over each column
    (text $\to$ image), as ``mmtutor.alignment.clip_loss``. ``n`` in 3..6. Draws on ``ax`` if given
    (limits 10 x 7.2); returns the Figure.
    """
    _checks.positive_int("n", n, minimum=3)
    if n > len(_PAIRS):
        raise ValueError(f"n must lie in [3, {len(_PAIRS)}], got {n}")
    fig, ax = canvas(10, 7.2, ax)
    tag(ax, (0.5, 6.9), "ch. 7")
    label(ax, (0.9, 6.9), f"CLIP: two towers, one {n} x {n} matrix, two cross-entropies", fontsize=TITLE,
          ha="left", weight="bold")
    c = 3.6 / n  # matrix cell size
    mx0, my1 = 3.85, 4.75  # matrix left edge, top edge
    rows_y = [my1 - (i + 0.5) * c for i in range(n)]
    cols_x = [mx0 + (j + 0.5) * c for j in range(n)]
    mid_x, mid_y = mx0 + n * c / 2, my1 - n * c / 2

    # the text tower, on top
    captions = "\n".join(f"{j + 1}: a {name} {shape}" for j, (name, _, shape) in enumerate(_PAIRS[:n]))
    cap_h = 0.25 * n + 0.2
    box(ax, (1.7, 6.6 - cap_h / 2), 2.6, cap_h, captions, role="plain", fontsize=SMALL, linespacing=1.45)
    box(ax, (mid_x, 6.05), 2.2, 0.5, "text encoder $g$", role="op")
    arrow(ax, (3.0, 6.05), (mid_x - 1.1, 6.05))
    label(ax, (mid_x + 1.25, 6.05), "$\\vec t_j = g(y_j) / \\Vert g(y_j) \\Vert$", ha="left")
    for j, x in enumerate(cols_x):
        arrow(ax, (mid_x, 5.8), (x, my1 + 0.48), color=MUTED, lw=1.0)
        box(ax, (x, my1 + 0.3), min(0.55, c - 0.08), 0.36, f"$\\vec t_{{{j + 1}}}$", role="data", fontsize=SMALL)

    # the image tower, on the left
    box(ax, (2.3, mid_y), 0.6, n * c, "image encoder $f$", role="op", rotation=90)
    for i, (y, (_, color, shape)) in enumerate(zip(rows_y, _PAIRS, strict=False)):
        _picture(ax, 0.85, y, min(0.7, c - 0.12), color, shape)
        label(ax, (0.35, y), f"{i + 1}", color=MUTED)
        arrow(ax, (0.85 + min(0.7, c - 0.12) / 2 + 0.03, y), (2.0, y), color=MUTED, lw=1.0)
        arrow(ax, (2.6, y), (3.05, y), color=MUTED, lw=1.0)
        box(ax, (3.3, y), 0.48, min(0.4, c - 0.1), f"$\\vec u_{{{i + 1}}}$", role="data", fontsize=SMALL)

    # the N x N matrix of logits: true pairs on the diagonal
    for i in range(n):
        for j in range(n):
            true = i == j
            cell(ax, mx0 + j * c, my1 - (i + 1) * c, c, c, ROLES["out"][0] if true else ROLES["muted"][0],
                 edge=ROLES["out"][1] if true else "white", lw=2 if true else 1.5,
                 text=f"$\\vec u_{{{i + 1}}} \\cdot \\vec t_{{{j + 1}}}$", fontsize=SMALL,
                 zorder=3 if true else 2)

    # the two cross-entropies
    right = mx0 + n * c
    for y in rows_y:
        arrow(ax, (right + 0.05, y), (8.0, mid_y), color=ROLES["space"][1], lw=1.0)
    box(ax, (8.95, mid_y), 1.8, 1.55, "each row $i$:\nimage $\\to$ text,\nsoftmax over\nthe texts,\ntarget $i$",
        role="space", fontsize=SMALL)
    bottom = my1 - n * c
    for x in cols_x:
        arrow(ax, (x, bottom - 0.05), (mid_x, 0.9), color=ROLES["space"][1], lw=1.0)
    box(ax, (mid_x, 0.58), 3.9, 0.62, "each column $j$: text $\\to$ image,\nsoftmax over the images, target $j$",
        role="space", fontsize=SMALL)
    loss = "$\\mathcal{L} = \\frac{1}{2}(\\mathrm{CE}_{\\mathrm{rows}} + \\mathrm{CE}_{\\mathrm{cols}})$"
    label(ax, (0.3, 0.95), loss, ha="left", fontsize=12)
    label(ax, (0.3, 0.42), "logits $= s\\,\\vec u_i \\cdot \\vec t_j$, $s$ = logit_scale", ha="left", color=INK)
    label(ax, (8.95, 0.58), f"diagonal: {n} true pairs\nthe other {n * n - n}:\nin-batch negatives", color=MUTED)
    return fig
