"""The pictures the chapters share: loss curves, heatmaps, 2-D maps of vectors, image galleries.

Each function draws on ``ax`` when given (so figures can be composed), otherwise on a new
figure, and returns the ``Axes`` it drew on. Tensors may live on any device.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes


def _numpy(x: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return ax if ax is not None else plt.figure(figsize=figsize).gca()


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


def plot_heatmap(matrix: torch.Tensor | np.ndarray, row_labels: Sequence[str] | None = None,
                 col_labels: Sequence[str] | None = None, ax: Axes | None = None, title: str = "",
                 cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
                 annotate: bool = False, fmt: str = "{:.2f}") -> Axes:
    """A labelled heatmap with a colour bar; ``annotate`` writes each value in its cell. A matrix that is not 2-D
    raises ``ValueError``."""
    m = _numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"plot_heatmap expects a 2-D matrix, got shape {m.shape}")
    ax = _axes(ax, (0.5 * m.shape[1] + 2.5, 0.4 * m.shape[0] + 1.5))
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if row_labels is not None:
        ax.set_yticks(range(m.shape[0]), labels=list(row_labels))
    if col_labels is not None:
        ax.set_xticks(range(m.shape[1]), labels=list(col_labels), rotation=60, ha="right")
    if annotate:
        for (i, j), value in np.ndenumerate(m):
            r, g, b, _ = image.cmap(image.norm(value))  # the cell's colour: dark text on light cells
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                    color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
    ax.set_title(title)
    return ax


def plot_points_2d(points: torch.Tensor | np.ndarray, labels: Sequence[str] | None = None,
                   groups: Sequence[str] | None = None, ax: Axes | None = None, title: str = "",
                   marker_size: float = 30) -> Axes:
    """Scatter ``points (N, 2)``, coloured by ``groups`` (one legend entry each), each labelled. Points of another
    shape, or labels and groups of another length, raise ``ValueError``."""
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
        ax.scatter(p[rows, 0], p[rows, 1], s=marker_size, label=group or None)
    if labels is not None:
        for (x, y), text in zip(p, labels, strict=True):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=8)
    if groups is not None:
        ax.legend(fontsize=8)
    ax.set_title(title)
    return ax


def show_images(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 8,
                size: float = 1.6) -> plt.Figure:
    """A gallery of images ``(N, C, H, W)`` (C = 1 or 3, values in [0, 1]) with optional titles. Images of
    another shape, or titles of another length, raise ``ValueError``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"show_images expects a tensor (N, 1 or 3, H, W), got {getattr(images, 'shape', None)}")
    n = images.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images")
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    pixels = images.detach().float().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(pixels[i].squeeze(-1) if pixels.shape[-1] == 1 else pixels[i], cmap="gray",
                      interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=7, wrap=True)
    fig.tight_layout()
    return fig
