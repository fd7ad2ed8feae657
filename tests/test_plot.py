"""Shared plotting helpers: the maths (PCA) against a reference, the drawings for their errors, the heatmap's
annotation formats, and legibility at the book's page width (no overlapping, clipped or tiny text, checked with
``mmtutor.diagrams.layout_problems``).

covers: mmtutor.plot
"""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.transforms import IdentityTransform  # noqa: E402

from mmtutor.diagrams import layout_problems  # noqa: E402
from mmtutor.plot import MIN_FONT, PAGE_WIDTH, pca, plot_heatmap, plot_loss, plot_points_2d, show_images  # noqa: E402


def test_pca_matches_numpy_svd_up_to_sign_and_is_sign_fixed():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g) * torch.tensor([5.0, 3, 1, 0.5, 0.2, 0.1])
    ours = pca(x, 2)
    centred = (x - x.mean(0)).double().numpy()
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    reference = u[:, :2] * s[:2]
    for j in range(2):
        col = ours[:, j].double().numpy()
        assert np.allclose(np.abs(col), np.abs(reference[:, j]), atol=1e-4)
    assert torch.allclose(pca(x * 1.0, 2), ours)  # deterministic
    # Largest variance first.
    assert ours[:, 0].var() > ours[:, 1].var()


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(2, 2, 2)])
def test_pca_rejects_non_matrices(bad):
    with pytest.raises(ValueError, match="2-D"):
        pca(bad)


def test_pca_rejects_bad_k():
    with pytest.raises(ValueError, match="k must"):
        pca(torch.zeros(4, 3), k=4)


def test_plots_draw_and_validate():
    ax = plot_loss([3.0, 2.0, 1.0, 0.5], smooth=2, label="run")
    assert len(ax.lines) == 2
    ax = plot_heatmap(torch.eye(3), ["a", "b", "c"], ["x", "y", "z"], annotate=True)
    assert len(ax.texts) == 9
    ax = plot_points_2d(torch.randn(4, 2), labels=list("abcd"), groups=["g1", "g1", "g2", "g2"])
    assert len(ax.collections) == 2
    fig = show_images(torch.rand(5, 3, 8, 8), titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="2-D"):
        plot_heatmap(torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot_points_2d(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="labels has 1 entries for 4 points"):
        plot_points_2d(torch.zeros(4, 2), labels=["a"])
    with pytest.raises(ValueError, match="show_images"):
        show_images(torch.zeros(2, 4, 8, 8))
    plt.close("all")


# --- the annotation formats and legibility at the page width (issue 16, items 20 and 21) ---------------------


@pytest.mark.parametrize("fmt", [".2f", "{:.2f}"])
def test_heatmap_annotations_accept_a_format_spec_or_a_format_string(fmt):
    m = torch.tensor([[1.0, 0.5], [-0.25, 0.125]])
    ax = plot_heatmap(m, ["a", "b"], ["x", "y"], annotate=True, fmt=fmt)
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.50", "-0.25", "0.12"]  # row by row; 0.125 rounds to even
    percent = "+.1%" if fmt == ".2f" else "{:+.1%}"
    ax = plot_heatmap(m, annotate=True, fmt=percent)
    assert [t.get_text() for t in ax.texts] == ["+100.0%", "+50.0%", "-25.0%", "+12.5%"]


@pytest.mark.parametrize("bad", ["{:d}", "xyz", "{name}"])
def test_heatmap_rejects_a_format_that_cannot_format_a_float(bad):
    with pytest.raises((ValueError, KeyError)):
        plot_heatmap(torch.eye(2), annotate=True, fmt=bad)


def test_heatmap_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="row_labels has 1 entries for 2 rows"):
        plot_heatmap(torch.eye(2), ["a"])


def _clusters(seed=0):
    """Five tight clusters of words, like the PCA of chapter 1's generated corpus: labels that collide."""
    rng = np.random.default_rng(seed)
    kinds = {"colour": ("red green blue yellow purple", (-2.2, 0.75)), "shape": ("circle square triangle", (-2, -1.2)),
             "animal": ("cat dog horse cow sheep goat", (0.9, -0.3)),
             "place": ("kitchen garden park forest beach field", (1.0, 1.6)),
             "action": ("sleeps eats plays hides waits sits", (0.95, -1.35))}
    points, labels, groups = [], [], []
    for kind, (words, centre) in kinds.items():
        for word in words.split():
            points.append(np.array(centre) + rng.normal(0, 0.04, 2))
            labels.append(word)
            groups.append(kind)
    return torch.tensor(np.array(points)), labels, groups


def test_points_2d_labels_do_not_overlap_in_tight_clusters():
    points, labels, groups = _clusters()
    naive, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.5))  # what a label at a fixed offset gives: collisions
    ax.scatter(points[:, 0], points[:, 1])
    for (x, y), word in zip(points.tolist(), labels, strict=True):
        ax.annotate(word, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=MIN_FONT)
    assert len(layout_problems(naive)) > 10
    for seed, legend_loc in ((0, "best"), (1, "upper left"), (2, "lower center")):
        points, labels, groups = _clusters(seed)
        fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 9))
        for ax in axes:  # two panels, then tight_layout: the labels are placed in the final layout
            plot_points_2d(points, labels=labels, groups=groups, ax=ax, title="PCA", legend_loc=legend_loc)
        fig.tight_layout()
        assert layout_problems(fig) == []
        assert sorted(t.get_text() for t in axes[0].texts) == sorted(labels)
        fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")  # the inline backend's two draws
        assert layout_problems(fig) == []


def test_points_2d_labels_stay_next_to_their_points_when_there_is_room():
    points = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    fig, ax = plt.subplots(figsize=(4, 4))
    plot_points_2d(points, labels=["a", "b", "c", "d"], ax=ax)
    fig.canvas.draw()
    assert all(abs(dx) < 8 and abs(dy) < 8 for dx, dy in (t.xyann for t in ax.texts))  # the nearest ring, in points
    assert not any(line.get_visible() for line in ax.findobj(Line2D) if line.get_transform() == IdentityTransform())


def test_show_images_wraps_titles_and_fits_the_page():
    titles = ["a large green triangle below a small green square"] * 10
    fig = show_images(torch.rand(10, 3, 8, 8), titles=titles, ncols=10, size=1.9)
    assert fig.get_size_inches()[0] <= PAGE_WIDTH + 1e-9
    assert layout_problems(fig) == []
    assert all(t.get_fontsize() >= MIN_FONT for ax in fig.axes for t in [ax.title])


def test_heatmap_annotations_are_legible_at_page_width():
    m = torch.rand(10, 10, generator=torch.Generator().manual_seed(0))
    words = ["red", "blue", "circle", "square", "cat", "dog", "kitchen", "park", "sleeps", "eats"]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 6))
    plot_heatmap(m, words, words, ax=ax, annotate=True, title="cosine similarity")
    fig.tight_layout()
    assert layout_problems(fig) == []


def test_a_plot_on_its_own_figure_keeps_its_labels_inside():
    for ax in (plot_loss([3.0, 2.0, 1.0]), plot_heatmap(torch.eye(3), ["a", "b", "c"], ["x", "y", "z"]),
               plot_points_2d(torch.randn(4, 2, generator=torch.Generator().manual_seed(0)), labels=list("abcd"))):
        assert layout_problems(ax.figure) == []
