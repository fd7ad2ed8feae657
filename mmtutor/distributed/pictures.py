r"""Pictures of this chapter: who holds what before and after a collective, and where a step's time goes.

:func:`plot_collective` draws one row of boxes per rank, one box per entry of the rank's tensor, with
its value written in and its colour saying where it came from: the colour of a rank for a value that
rank contributed, grey for a value combined from every rank (a sum).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

MIXED = -1  # owner code of a value combined from every rank


def _draw_ranks(ax: Axes, values: Sequence[Sequence[float]], owners: Sequence[Sequence[int]], title: str) -> None:
    colours = plt.get_cmap("tab10")
    width = max((len(v) for v in values), default=1)
    for r, (row, own) in enumerate(zip(values, owners, strict=True)):
        y = len(values) - 1 - r
        ax.text(-0.15, y + 0.5, f"rank {r}", ha="right", va="center", fontsize=10)
        for j, (v, o) in enumerate(zip(row, own, strict=True)):
            face = "0.82" if o == MIXED else colours(o % 10)
            ax.add_patch(Rectangle((j, y + 0.1), 0.92, 0.8, facecolor=face, edgecolor="black", alpha=0.75))
            text = f"{v:.4g}" if isinstance(v, float) else str(v)
            ax.text(j + 0.46, y + 0.5, text, ha="center", va="center", fontsize=9)
        if not row:
            ax.text(0.46, y + 0.5, "(nothing)", ha="center", va="center", fontsize=9, color="0.4")
    ax.set(xlim=(-1.1, width + 0.1), ylim=(-0.1, len(values) + 0.1), title=title)
    ax.axis("off")


def plot_collective(name: str, before: Sequence[Sequence[float]], after: Sequence[Sequence[float]],
                    owners_before: Sequence[Sequence[int]] | None = None,
                    owners_after: Sequence[Sequence[int]] | None = None,
                    axes: Sequence[Axes] | None = None) -> Figure:
    r"""Two panels, before and after the collective ``name``: ``before[r]`` and ``after[r]`` are rank ``r``'s values.

    ``owners_*[r][j]`` is the rank that contributed entry ``j`` of rank ``r``'s tensor (:data:`MIXED` for a
    value combined from all ranks); by default every entry belongs to the rank that holds it. ``axes``: two
    axes to draw into (a new figure by default); returns their figure.
    """
    if len(before) != len(after) or not before:
        raise ValueError(f"need the values of every rank before and after, got {len(before)} and {len(after)} ranks")
    owners_before = owners_before or [[r] * len(v) for r, v in enumerate(before)]
    owners_after = owners_after or [[r] * len(v) for r, v in enumerate(after)]
    if axes is None:
        width = max(len(v) for v in [*before, *after]) or 1
        axes = plt.subplots(1, 2, figsize=(2.2 + 1.6 * width, 0.75 * len(before) + 0.9))[1]
    if len(axes) != 2:
        raise ValueError(f"axes must be two axes (before, after), got {len(axes)}")
    _draw_ranks(axes[0], before, owners_before, f"{name}: before")
    _draw_ranks(axes[1], after, owners_after, f"{name}: after")
    return axes[0].figure


def plot_step_times(times: Mapping[str, Mapping[str, float]], ax: Axes | None = None, title: str = "") -> Axes:
    r"""Stacked bars, one per configuration (``times[label] = {"compute": s, "communication": s, ...}``), in ms."""
    if not times:
        raise ValueError("times must name at least one configuration")
    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    parts = list(dict.fromkeys(p for t in times.values() for p in t))
    labels = list(times)
    bottom = [0.0] * len(labels)
    for part in parts:
        heights = [1000 * times[label].get(part, 0.0) for label in labels]
        ax.bar(labels, heights, bottom=bottom, label=part)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set(ylabel="ms per step", title=title)
    ax.legend()
    return ax
