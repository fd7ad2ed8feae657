r"""The shared look of the diagrams and the checks that keep them legible.

Drawing: every diagram draws on one Axes whose data units are inches (:func:`canvas`), so a font
size and a box size can be compared by eye in the code; boxes are rounded patches with their label
inside (:func:`box`), arrows are :class:`~matplotlib.patches.FancyArrowPatch` (:func:`arrow`,
:func:`path_arrow`).

Checking (used by the tests, usable on any figure): :func:`text_overlaps` lists pairs of texts whose
rendered extents intersect, and texts that cross a box they do not belong to; :func:`layout_problems`
adds texts that leave the figure, labels that spill out of their own box, and fonts below 9 pt.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

# A small palette: (face, edge) per role, the same role in the same colour in every diagram.
INK = "#1f2933"
MUTED = "#6b7280"
ROLES = {
    "data": ("#dbeafe", "#1d4ed8"),     # inputs and tensors (blue)
    "op": ("#ffedd5", "#c2410c"),       # learned operations and weights (orange)
    "out": ("#dcfce7", "#15803d"),      # outputs, true pairs, positives (green)
    "space": ("#ede9fe", "#6d28d9"),    # shared spaces, similarity (purple)
    "neg": ("#fee2e2", "#b91c1c"),      # negatives, masked entries (red)
    "muted": ("#f3f4f6", "#9ca3af"),    # context, skipped, not attended (grey)
    "plain": ("#ffffff", "#4b5563"),    # neutral boxes
}
# One colour per attention head, per IVF cell, per PQ subspace (colour-blind-safe Okabe-Ito order).
SERIES = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FONT = 11      # box labels
SMALL = 10     # annotations
TITLE = 13     # figure titles
MIN_FONT = 9   # nothing smaller (the book shows figures at about 750 px wide)

_OWNER = "_mmtutor_owner"  # attribute of a label Text: the patch it must stay inside


def canvas(width: float, height: float, ax: Axes | None = None) -> tuple[Figure, Axes]:
    r"""A figure ``width x height`` inches (or the given ``ax``) with data units in inches and no axes drawn."""
    if ax is None:
        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return ax.figure, ax


def box(ax: Axes, center: tuple[float, float], w: float, h: float, text: str = "", role: str = "plain",
        fontsize: float = FONT, rounding: float = 0.08, lw: float = 1.4, **text_kw) -> FancyBboxPatch:
    r"""A rounded box of size ``w x h`` centred at ``center``, its label inside (checked to stay inside)."""
    face, edge = ROLES[role]
    x, y = center
    patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={rounding}",
                           facecolor=text_kw.pop("facecolor", face), edgecolor=text_kw.pop("edgecolor", edge),
                           linewidth=lw, zorder=text_kw.pop("zorder", 2))
    patch.set_gid("mmtutor-box")
    ax.add_patch(patch)
    if text:
        label = ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=text_kw.pop("color", INK),
                        zorder=patch.get_zorder() + 1, linespacing=text_kw.pop("linespacing", 1.3), **text_kw)
        setattr(label, _OWNER, patch)
    return patch


def frame(ax: Axes, x0: float, y0: float, w: float, h: float, color: str = MUTED, ls: str = "-",
          face: str = "none", rounding: float = 0.15) -> FancyBboxPatch:
    r"""A rounded outline that groups other boxes (not a box: texts may sit inside it)."""
    patch = FancyBboxPatch((x0, y0), w, h, boxstyle=f"round,pad=0,rounding_size={rounding}", facecolor=face,
                           edgecolor=color, linewidth=1.2, linestyle=ls, zorder=0)
    ax.add_patch(patch)
    return patch


def cell(ax: Axes, x0: float, y0: float, w: float, h: float, face: str, edge: str = "white", lw: float = 1.0,
         text: str = "", fontsize: float = SMALL, color: str = INK, zorder: float = 2) -> Rectangle:
    r"""A square-cornered cell (matrix entry, vector coordinate) with an optional label inside."""
    patch = Rectangle((x0, y0), w, h, facecolor=face, edgecolor=edge, linewidth=lw, zorder=zorder)
    ax.add_patch(patch)
    if text:
        label = ax.text(x0 + w / 2, y0 + h / 2, text, ha="center", va="center", fontsize=fontsize, color=color,
                        zorder=zorder + 1)
        setattr(label, _OWNER, patch)
    return patch


def op_circle(ax: Axes, center: tuple[float, float], symbol: str, r: float = 0.17, role: str = "op") -> Circle:
    r"""A small circle holding an operator (``r"$\times$"``, ``"+"``, ``r"$\sigma$"``)."""
    face, edge = ROLES[role]
    patch = Circle(center, r, facecolor=face, edgecolor=edge, linewidth=1.4, zorder=4)
    patch.set_gid("mmtutor-box")
    ax.add_patch(patch)
    label = ax.text(*center, symbol, ha="center", va="center", fontsize=FONT, color=INK, zorder=5)
    setattr(label, _OWNER, patch)
    return patch


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str = INK, lw: float = 1.4,
          style: str = "-|>", connectionstyle: str = "arc3", ls: str = "-", zorder: float = 1) -> FancyArrowPatch:
    r"""An arrow from ``start`` to ``end`` (data coordinates), head at ``end``."""
    patch = FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=13, color=color, linewidth=lw,
                            linestyle=ls, connectionstyle=connectionstyle, shrinkA=0, shrinkB=0, zorder=zorder)
    ax.add_patch(patch)
    return patch


def path_arrow(ax: Axes, points: Sequence[tuple[float, float]], color: str = INK, lw: float = 1.4,
               head: bool = True, ls: str = "-", zorder: float = 1) -> None:
    r"""A polyline through ``points`` (right-angle routing), with an arrow head on the last segment."""
    xs, ys = zip(*points, strict=True)
    last = len(points) - 1 if head else len(points)
    if last >= 2:
        ax.plot(xs[:last], ys[:last], color=color, linewidth=lw, linestyle=ls, solid_capstyle="butt",
                zorder=zorder)
    if head:
        arrow(ax, points[-2], points[-1], color=color, lw=lw, ls=ls, zorder=zorder)
    elif last == 1:
        ax.plot(xs, ys, color=color, linewidth=lw, linestyle=ls, zorder=zorder)


def label(ax: Axes, xy: tuple[float, float], text: str, fontsize: float = SMALL, color: str = INK,
          ha: str = "center", va: str = "center", **kw) -> Text:
    r"""A free text (annotation, title) in data coordinates."""
    return ax.text(*xy, text, fontsize=fontsize, color=color, ha=ha, va=va, **kw)


def tag(ax: Axes, xy: tuple[float, float], text: str, fontsize: float = SMALL) -> FancyBboxPatch:
    r"""A chapter tag: a small dark pill with white text, its centre at ``xy``, sized to its text."""
    w = 0.12 + 0.075 * len(text) * fontsize / SMALL
    return box(ax, xy, w, 0.26, text, role="plain", fontsize=fontsize, rounding=0.12, lw=0, facecolor=INK,
               edgecolor=INK, color="white", zorder=3)


def light(color: str, amount: float) -> np.ndarray:
    """``color`` mixed with white: ``amount`` 0 is white, 1 the colour."""
    return 1 - amount * (1 - np.array(to_rgb(color)))


# --- checks ----------------------------------------------------------------------------------------------------


def _drawn_texts(fig: Figure) -> list[Text]:
    """The non-empty, visible texts the figure draws (tick labels only of visible axes, inside their view)."""
    hidden: set[int] = set()
    for ax in fig.axes:
        for axis, (low, high) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
            if not ax.axison or not axis.get_visible():
                hidden.update(id(t) for t in axis.findobj(Text))
                continue
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    hidden.update((id(tick.label1), id(tick.label2)))
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden
            and (t.axes is None or t.axes.get_visible())]


def _extents(fig: Figure) -> list[tuple[Text, Bbox]]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t, t.get_window_extent(renderer)) for t in _drawn_texts(fig)]


def _intersect(a: Bbox, b: Bbox, tol: float) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def _boxes(fig: Figure) -> list[Patch]:
    return [p for p in fig.findobj(Patch) if p.get_gid() == "mmtutor-box" and p.get_visible()]


def _overlaps(fig: Figure, items: list[tuple[Text, Bbox]], tol: float) -> list[tuple[str, str]]:
    found = [(a.get_text(), b.get_text()) for i, (a, ea) in enumerate(items) for b, eb in items[i + 1:]
             if _intersect(ea, eb, tol)]
    renderer = fig.canvas.get_renderer()
    owners = {id(getattr(t, _OWNER)): t.get_text() for t, _ in items if hasattr(t, _OWNER)}
    for patch in _boxes(fig):
        extent = patch.get_window_extent(renderer)
        for t, e in items:
            if getattr(t, _OWNER, None) is not patch and _intersect(e, extent, tol):
                found.append((t.get_text(), f"box around {owners.get(id(patch), '(no label)')!r}"))
    return found


def text_overlaps(fig: Figure, tol: float = 1.0) -> list[tuple[str, str]]:
    r"""Pairs ``(text, other)`` of drawn texts whose extents intersect by more than ``tol`` pixels both ways,
    and ``(text, "box around <label>")`` where a text crosses a box (:func:`box`) it is not the label of.

    Extents come from ``Text.get_window_extent`` with the figure's renderer, after a full draw.
    """
    return _overlaps(fig, _extents(fig), tol)


def layout_problems(fig: Figure, tol: float = 1.0, min_font: float = MIN_FONT) -> list[str]:
    r"""Everything that makes a diagram hard to read, one sentence each (an empty list when none):
    overlapping texts (:func:`text_overlaps`), a text that leaves the figure, a box label that spills
    out of its box, a font smaller than ``min_font`` points. Draws the figure once.
    """
    items = _extents(fig)
    problems = [f"{a!r} overlaps {b!r}" for a, b in _overlaps(fig, items, tol)]
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    for t, e in items:
        if e.x0 < page.x0 - tol or e.y0 < page.y0 - tol or e.x1 > page.x1 + tol or e.y1 > page.y1 + tol:
            problems.append(f"{t.get_text()!r} leaves the figure")
        owner = getattr(t, _OWNER, None)
        if owner is not None:
            o = owner.get_window_extent(renderer)
            if e.x0 < o.x0 - tol or e.y0 < o.y0 - tol or e.x1 > o.x1 + tol or e.y1 > o.y1 + tol:
                problems.append(f"{t.get_text()!r} spills out of its box")
        if t.get_fontsize() < min_font - 1e-9:
            problems.append(f"{t.get_text()!r} is set in {t.get_fontsize():.1f} pt (< {min_font} pt)")
    return problems
