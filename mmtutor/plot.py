"""The pictures the chapters share: loss curves, heatmaps, 2-D maps of vectors, image galleries.

Each function draws on ``ax`` when given (so figures can be composed), otherwise on a new
figure, and returns the ``Axes`` it drew on. Tensors may live on any device.

Legible at the book's page width (about 750 pixels, 7.5 inches at 100 dpi): texts are set in at least
``MIN_FONT`` points, :func:`plot_points_2d` moves each label to a free spot around its point when the figure
is drawn (after any ``tight_layout``), and :func:`show_images` wraps titles to their image's width and keeps
the gallery within ``PAGE_WIDTH``. ``mmtutor.diagrams.layout_problems`` checks any figure for overlapping,
clipped or tiny text.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.text import Annotation, Text
from matplotlib.transforms import IdentityTransform

MIN_FONT = 9  # points: nothing smaller (the book shows figures at about 750 px wide)
PAGE_WIDTH = 7.5  # inches: a wider figure is scaled down on the page, and its fonts with it


def _numpy(x: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    # a figure of its own is laid out tightly when drawn, so that no label falls off its edge
    return ax if ax is not None else plt.figure(figsize=figsize, layout="tight").gca()


def pca(x: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Project the rows of ``x (N, D)`` on their top-``k`` principal directions: ``(N, k)``.

    Centre, ``X - mean = U S V^T``, keep ``U[:, :k] S[:k]``. Each direction's sign is fixed so
    its largest coordinate is positive, so CPU and GPU draw the same picture. Anything but a 2-D tensor, or
    ``k`` outside ``[1, min(N, D)]``, raises ``ValueError``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"pca expects a 2-D tensor (N, D), got {getattr(x, 'shape', type(x).__name__)}")
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"k must lie in [1, min(N, D)] = [1, {min(x.shape)}], got {k}")
    x = x.detach().double()
    centred = x - x.mean(dim=0, keepdim=True)  # (N, D)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)  # vh: (min(N, D), D)
    directions = vh[:k]  # (k, D)
    sign = torch.sign(directions.gather(1, directions.abs().argmax(dim=1, keepdim=True)))  # (k, 1)
    return (centred @ (directions * sign).T).float()  # (N, k)


def plot_loss(history: Sequence[float], ax: Axes | None = None, title: str = "training loss",
              label: str | None = None, smooth: int = 1) -> Axes:
    """Loss per step; ``smooth > 1`` overlays a moving average over that many steps."""
    ax = _axes(ax, (5, 3))
    y = _numpy(history)
    ax.plot(y, alpha=0.35 if smooth > 1 else 1.0, label=None if smooth > 1 else label)
    if smooth > 1 and len(y) >= smooth:
        avg = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(smooth - 1, len(y)), avg, label=label)
    ax.set(xlabel="step", ylabel="loss", title=title)
    if label:
        ax.legend()
    return ax


def _formatter(fmt: str):
    """``"{:.2f}"`` (a format string) or ``".2f"`` (a format spec, as ``format(value, spec)`` takes)."""
    if "{" in fmt:
        fmt.format(0.0)  # a bad format string fails here, before anything is drawn
        return fmt.format
    format(0.0, fmt)
    return lambda value: format(value, fmt)


def plot_heatmap(matrix: torch.Tensor | np.ndarray, row_labels: Sequence[str] | None = None,
                 col_labels: Sequence[str] | None = None, ax: Axes | None = None, title: str = "",
                 cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
                 annotate: bool = False, fmt: str = "{:.2f}", fontsize: float = MIN_FONT) -> Axes:
    """A labelled heatmap with a colour bar; ``annotate`` writes each value in its cell, formatted by ``fmt``:
    a format string (``"{:.2f}"``) or a format spec (``".2f"``), in ``fontsize`` points. A matrix that is not
    2-D, or labels of the wrong length, raise ``ValueError``; a ``fmt`` that cannot format a float raises
    ``ValueError`` (or ``IndexError`` / ``KeyError`` for a format string with other fields)."""
    m = _numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"plot_heatmap expects a 2-D matrix, got shape {m.shape}")
    for name, labels, n in (("row_labels", row_labels, m.shape[0]), ("col_labels", col_labels, m.shape[1])):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} entries for {n} {name[:3]}s")
    text_of = _formatter(fmt) if annotate else None
    ax = _axes(ax, (min(0.5 * m.shape[1] + 2.5, PAGE_WIDTH), 0.4 * m.shape[0] + 1.5))
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if row_labels is not None:
        ax.set_yticks(range(m.shape[0]), labels=list(row_labels))
    if col_labels is not None:
        ax.set_xticks(range(m.shape[1]), labels=list(col_labels), rotation=60, ha="right")
    if text_of is not None:
        for (i, j), value in np.ndenumerate(m):
            r, g, b, _ = image.cmap(image.norm(value))  # the cell's colour: dark text on light cells
            ax.text(j, i, text_of(value), ha="center", va="center", fontsize=fontsize,
                    color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
    ax.set_title(title)
    return ax


# label offsets tried around a point: 16 directions (right first, then up, down, left and between) on rings of
# growing radius (points beyond the marker's edge), the nearest ring first
_ANGLES = np.deg2rad([0, 180, 90, 270, 22.5, -22.5, 157.5, 202.5, 45, -45, 135, 225, 67.5, -67.5, 112.5, 247.5])
_DIRECTIONS = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)  # (16, 2)
_RINGS = np.array([1.5, 4.0, 7.0, 11.0, 16.0, 22.0, 29.0, 37.0, 46.0, 56.0])


class _LabelPlacer(Artist):
    r"""Places the labels of :func:`plot_points_2d` when the figure is drawn, so with its final layout.

    Each label in turn takes the first offset (nearest ring first) where it overlaps no label placed before,
    no marker and no legend, and stays inside the axes; if there is none, the offset with the least overlap.
    A label set away from its point gets a thin leader line.
    """

    def __init__(self, ax: Axes, xy: np.ndarray, labels: list[Annotation], marker_size: float) -> None:
        super().__init__()
        self._ax, self._xy, self._labels = ax, xy, labels
        self._radius = math.sqrt(marker_size) / 2  # points: the marker's radius (s is an area in pt^2)
        self._lines = [Line2D([], [], color="0.6", lw=0.6, transform=IdentityTransform()) for _ in labels]
        self.set_zorder(min(a.get_zorder() for a in labels) - 0.01)  # drawn before the labels
        self.set_in_layout(False)

    def get_children(self) -> list[Artist]:
        return list(self._lines)

    def draw(self, renderer) -> None:
        ax, px = self._ax, renderer.points_to_pixels(1.0)
        centres = ax.transData.transform(self._xy)  # (N, 2) in pixels
        r, pad = self._radius * px, 1.5 * px  # marker radius; the gap kept between neighbours
        blocked = [np.concatenate([centres - r, centres + r], axis=1)]  # (N, 4) boxes x0, y0, x1, y1
        legend = ax.get_legend()
        if legend is not None:
            where = legend.get_window_extent(renderer)
            # "best" looks at the labels too: pin the legend where it is, so it does not move once they do
            legend.set_loc(tuple(ax.transAxes.inverted().transform((where.x0, where.y0))))
            blocked.append(np.array([where.extents]))
        inside = ax.get_window_extent(renderer).extents
        dx, dy = (np.repeat(_DIRECTIONS[None], len(_RINGS), 0).reshape(-1, 2) * 1.0).T  # (C,) each
        reach = np.repeat(_RINGS, len(_DIRECTIONS)) + self._radius  # (C,) points from the centre
        ha = np.where(dx > 0.2, 0.0, np.where(dx < -0.2, 1.0, 0.5))  # share of the width left of the anchor
        va = np.where(dy > 0.6, 0.0, np.where(dy < -0.6, 1.0, 0.5))
        for label, line, (x, y) in zip(self._labels, self._lines, centres, strict=True):
            label.set_ha("left")
            label.set_va("bottom")
            w, h = Text.get_window_extent(label, renderer).size  # the size does not depend on where it sits
            x0 = x + dx * reach * px - ha * w - pad  # (C,) candidate boxes, padded
            y0 = y + dy * reach * px - va * h - pad
            boxes = np.stack([x0, y0, x0 + w + 2 * pad, y0 + h + 2 * pad], axis=1)  # (C, 4)
            others = np.concatenate(blocked)  # (M, 4)
            cost = _overlaps(boxes, others).sum(1)  # (C,) area covered by others
            cost += (w + 2 * pad) * (h + 2 * pad) - _overlaps(boxes, inside[None])[:, 0]  # area outside the axes
            free = np.flatnonzero(cost <= 0)
            c = int(free[0]) if len(free) else int(cost.argmin())
            label.xyann = (dx[c] * reach[c], dy[c] * reach[c])  # points
            label.set_ha({0.0: "left", 1.0: "right", 0.5: "center"}[ha[c]])
            label.set_va({0.0: "bottom", 1.0: "top", 0.5: "center"}[va[c]])
            blocked.append(boxes[c:c + 1])
            bx0, by0, bx1, by1 = boxes[c]
            line.set_data([x, min(max(x, bx0 + pad), bx1 - pad)], [y, min(max(y, by0 + pad), by1 - pad)])
            line.set_visible(reach[c] > 2.5 * self._radius + 3)  # a leader line once it moved away
            line.draw(renderer)


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Areas of intersection of boxes ``a (C, 4)`` and ``b (M, 4)`` (x0, y0, x1, y1): ``(C, M)``."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def plot_points_2d(points: torch.Tensor | np.ndarray, labels: Sequence[str] | None = None,
                   groups: Sequence[str] | None = None, ax: Axes | None = None, title: str = "",
                   marker_size: float = 30, fontsize: float = MIN_FONT, legend_loc: str = "best") -> Axes:
    """Scatter ``points (N, 2)``, coloured by ``groups`` (one legend entry each, at ``legend_loc``), each
    labelled in ``fontsize`` points. Labels are placed when the figure is drawn, each at the nearest spot
    around its point that no other label, marker or the legend covers (with a leader line when it had to move
    away). Points of another shape, or labels and groups of another length, raise ``ValueError``."""
    p = _numpy(points)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"plot_points_2d expects points of shape (N, 2), got {p.shape}")
    for name, values in (("labels", labels), ("groups", groups)):
        if values is not None and len(values) != len(p):
            raise ValueError(f"{name} has {len(values)} entries for {len(p)} points")
    ax = _axes(ax, (6, 5))
    group_list = list(groups) if groups is not None else [""] * len(p)
    for group in dict.fromkeys(group_list):  # first-seen order
        rows = [i for i, g in enumerate(group_list) if g == group]
        ax.scatter(p[rows, 0], p[rows, 1], s=marker_size, label=group or None, zorder=2)
    if labels is not None and len(p):
        ax.margins(0.15)  # room for the labels of the outermost points
        notes = [ax.annotate(text, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=fontsize,
                             zorder=3) for (x, y), text in zip(p, labels, strict=True)]
        ax.add_artist(_LabelPlacer(ax, p, notes, marker_size))
    if groups is not None:
        ax.legend(fontsize=fontsize, loc=legend_loc)
    ax.set_title(title)
    return ax


def show_images(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 8,
                size: float = 1.6, fontsize: float = MIN_FONT, max_width: float = PAGE_WIDTH) -> plt.Figure:
    """A gallery of images ``(N, C, H, W)`` (C = 1 or 3, values in [0, 1]) with optional titles, ``size``
    inches per image. Fewer columns are used when ``ncols`` images of ``size`` would be wider than ``max_width``
    inches (the page); titles are wrapped to their image's width, in ``fontsize`` points. Images of another
    shape, or titles of another length, raise ``ValueError``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"show_images expects a tensor (N, 1 or 3, H, W), got {getattr(images, 'shape', None)}")
    n = images.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images")
    ncols = max(1, min(ncols, n, int(max_width // size) or 1))
    nrows = (n + ncols - 1) // ncols
    chars = max(6, int(size * 72 / (0.55 * fontsize)))  # characters per title line: about 0.55 em each
    wrapped = [textwrap.fill(t, chars) for t in titles] if titles is not None else None
    lines = max((w.count("\n") + 1 for w in wrapped), default=0) if wrapped else 0
    title_height = lines * fontsize * 1.25 / 72  # inches per row of images
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + title_height) * nrows + 0.2),
                             squeeze=False)
    pixels = images.detach().float().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(pixels[i].squeeze(-1) if pixels.shape[-1] == 1 else pixels[i], cmap="gray",
                      interpolation="nearest")
            if wrapped is not None:
                ax.set_title(wrapped[i], fontsize=fontsize)
    fig.tight_layout()
    return fig
