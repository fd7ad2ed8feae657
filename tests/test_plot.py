"""Shared plotting helpers: the maths (PCA) against a reference, the drawings for their errors.

covers: mmtutor.plot
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mmtutor.plot import pca, plot_heatmap, plot_loss, plot_points_2d, show_images  # noqa: E402


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
