"""covers: mmtutor.diagrams (pipeline, reading, attending, searching, aligning, _drawing, _geometry)

Every diagram draws without a warning, carries the texts its chapter refers to, shows what it claims
(gate order, residual placement, masked cells, the diagonal, PQ's sums), and is legible: no two texts
overlap, none leaves the figure or spills out of its box, none is set below 9 pt. The legibility check
itself is tested on figures built to fail it.
"""

import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mmtutor import diagrams  # noqa: E402
from mmtutor.diagrams import layout_problems, text_overlaps  # noqa: E402
from mmtutor.diagrams._drawing import _OWNER, box, canvas  # noqa: E402
from mmtutor.diagrams._geometry import lloyd, nearest, voronoi_cell  # noqa: E402

# (function, keyword arguments): every public diagram, at its defaults and at the ends of its ranges
CASES = [
    ("pipeline_diagram", {}),
    ("skipgram_diagram", {}),
    ("lstm_cell_diagram", {}),
    ("qkv_heads_diagram", {}),
    ("qkv_heads_diagram", {"n_heads": 1}),
    ("qkv_heads_diagram", {"n_heads": 8}),
    ("transformer_block_diagram", {}),
    ("transformer_block_diagram", {"norm_first": True}),
    ("causal_mask_diagram", {}),
    ("causal_mask_diagram", {"n_tokens": 2}),
    ("causal_mask_diagram", {"n_tokens": 8}),
    ("kv_cache_diagram", {}),
    ("kv_cache_diagram", {"n_layers": 4, "t": 8}),
    ("kv_cache_diagram", {"n_layers": 1, "t": 2}),
    ("ivf_diagram", {}),
    ("ivf_diagram", {"n_lists": 4, "n_probe": 1}),
    ("pq_diagram", {}),
    ("clip_diagram", {}),
    ("clip_diagram", {"n": 3}),
    ("clip_diagram", {"n": 6}),
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def draw(name, **kwargs):
    """The figure of diagram ``name``, built with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = getattr(diagrams, name)(**kwargs)
    assert isinstance(fig, matplotlib.figure.Figure)
    return fig


def texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()]


def find(fig, pattern):
    """The visible texts matching the regular expression ``pattern``."""
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and re.search(pattern, t.get_text())]


def x_of(fig, pattern):
    return sorted(t.get_position()[0] for t in find(fig, pattern))


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_every_diagram_is_legible(name, kwargs):
    fig = draw(name, **kwargs)
    with warnings.catch_warnings():  # rendering (fonts, mathtext) warns nothing either
        warnings.simplefilter("error")
        assert layout_problems(fig) == []  # draws the figure
    width, _ = fig.get_size_inches()
    assert 7 <= width <= 10  # about 700-1000 px at the default dpi: legible at the book's page width


def test_all_diagrams_are_exported():
    assert {n for n, _ in CASES} | {"text_overlaps", "layout_problems"} == set(diagrams.__all__)


def test_pipeline_names_every_chapter_and_formula():
    found = texts(draw("pipeline_diagram"))
    for chapter in ["ch. 0", "ch. 1, 4", "ch. 1", "ch. 2", "ch. 3", "ch. 4", "ch. 5", "ch. 6", "ch. 7", "ch. 8-9",
                    "ch. 10"]:
        assert chapter in found, chapter
    joined = "\n".join(found)
    for formula in [r"$\vec w = E(w)$", r"$\vec h = C(\vec w, \vec c)$", r"$\vec a = A(\vec h, \vec H)$",
                    r"$\mathrm{sim}(\vec a, \vec b)$", r"$\vec v = M(\vec x)$"]:
        assert formula in joined, formula
    for word in ["tokens", "language model", "images", "sound", "retrieval", "RAG", "translation",
                 "recommendation", "torch.distributed"]:
        assert word in joined, word


def test_skipgram_has_one_positive_and_k_negatives():
    fig = draw("skipgram_diagram")
    assert len(find(fig, r"label 1$")) == 1 and len(find(fig, r"label 0$")) == 3
    joined = "\n".join(texts(fig))
    for word in ["minister", "prime", "input table $E$", "output table $U$", r"\mathrm{count}(w)^{3/4}",
                 r"\sigma(\vec w_c \cdot \vec u_{\mathrm{prime}})"]:
        assert word in joined, word


def test_lstm_cell_shows_the_four_gates_in_nn_lstm_order():
    fig = draw("lstm_cell_diagram")
    found = texts(fig)
    for symbol in ["$i_t$", "$f_t$", "$g_t$", "$o_t$", "$c_{t-1}$", "$c_t$", "$h_{t-1}$", "$h_t$", "$x_t$"]:
        assert symbol in found, symbol
    # the stacked weights, left to right: i, f, g, o (nn.LSTM's weight_ih rows)
    chips = sorted((t.get_position()[0], t.get_text()) for t in find(fig, r"^[ifgo]$"))
    assert [name for _, name in chips] == ["i", "f", "g", "o"]
    assert len(find(fig, r"\$\\sigma\$")) == 3 and len(find(fig, r"(^|\n)tanh$")) == 2  # 3 sigmoids; g and c use tanh


@pytest.mark.parametrize("n_heads", [1, 2, 4, 8])
def test_qkv_has_one_softmax_per_head(n_heads):
    fig = draw("qkv_heads_diagram", n_heads=n_heads)
    assert len(find(fig, "softmax")) == n_heads
    joined = "\n".join(texts(fig))
    for name in ["$W^Q$", "$W^K$", "$W^V$", "$W^O$", "concatenate", f"= {64 // n_heads}$ columns per head"]:
        assert name in joined, name


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_block_puts_the_norm_where_the_variant_says(norm_first):
    fig = draw("transformer_block_diagram", norm_first=norm_first)
    norms, mha, ffn = x_of(fig, "layer\nnorm"), x_of(fig, "multi-head"), x_of(fig, "feed-forward")
    adds = x_of(fig, r"^\$\+\$$")
    assert len(norms) == 2 and len(adds) == 2 and len(find(fig, "^residual$")) == 2
    if norm_first:  # LN -> MHA -> + -> LN -> FFN -> +
        assert norms[0] < mha[0] < adds[0] < norms[1] < ffn[0] < adds[1]
    else:  # MHA -> + -> LN -> FFN -> + -> LN
        assert mha[0] < adds[0] < norms[0] < ffn[0] < adds[1] < norms[1]
    assert ("pre-LN" if norm_first else "post-LN") in "\n".join(texts(fig))


@pytest.mark.parametrize("n_tokens", [2, 5, 8])
def test_causal_mask_masks_exactly_the_upper_triangle(n_tokens):
    fig = draw("causal_mask_diagram", n_tokens=n_tokens)
    masked = find(fig, r"^\$-\\infty\$$")
    assert len(masked) == n_tokens * (n_tokens - 1) // 2  # only the causal panel, above its diagonal
    assert "bidirectional (BERT)" in "\n".join(texts(fig))


def test_kv_cache_appends_one_column_per_layer():
    fig = draw("kv_cache_diagram", n_layers=3, t=6)
    assert len(find(fig, r"^layer \d$")) == 3
    assert len(find(fig, r"^\$[KV]\$: 5 kept, 1 new$")) == 6


@pytest.mark.parametrize(("n_probe", "verdict"), [(1, "missed"), (2, "found"), (8, "found")])
def test_ivf_probing_more_cells_finds_the_neighbour(n_probe, verdict):
    fig = draw("ivf_diagram", n_probe=n_probe)
    title = fig.axes[0].get_title()
    assert "is in cell 2 of the ranking" in title and f"{verdict} with n_probe = {n_probe}" in title


def test_pq_numbers_are_consistent():
    fig = draw("pq_diagram")
    codes = [int(t.get_text()) for t in find(fig, r"^\d+$")]
    assert len(codes) == 4 and all(0 <= c < 256 for c in codes)
    (line,) = find(fig, "exact")
    terms, total, exact = re.search(r"\$ = ([\d. +]+) = ([\d.]+)\s+\(exact: ([\d.]+)\)", line.get_text()).groups()
    assert abs(sum(float(v) for v in terms.split(" + ")) - float(total)) < 0.011
    assert abs(float(total) - float(exact)) < 0.25 * float(exact)  # 256 centroids per 2-D subspace: close


@pytest.mark.parametrize("n", [3, 4, 6])
def test_clip_matrix_highlights_the_diagonal(n):
    fig = draw("clip_diagram", n=n)
    cells = find(fig, r"^\$\\vec u_\{\d\} \\cdot \\vec t_\{\d\}\$$")
    assert len(cells) == n * n
    for t in cells:
        i, j = re.findall(r"\{(\d)\}", t.get_text())
        face = getattr(t, _OWNER).get_facecolor()
        assert (i == j) == (face == matplotlib.colors.to_rgba(diagrams._drawing.ROLES["out"][0])), t.get_text()
    joined = "\n".join(texts(fig))
    assert "image $\\to$ text" in joined and "text $\\to$ image" in joined and f"the other {n * n - n}" in joined


@pytest.mark.parametrize("name", ["ivf_diagram", "pq_diagram"])  # the two drawn from seeded data
def test_diagrams_are_deterministic(name):
    def pixels():
        fig = draw(name)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba()).copy()
    assert np.array_equal(pixels(), pixels())


@pytest.mark.parametrize("name", ["skipgram_diagram", "lstm_cell_diagram", "qkv_heads_diagram",
                                  "transformer_block_diagram", "causal_mask_diagram", "kv_cache_diagram",
                                  "ivf_diagram", "clip_diagram"])
def test_diagrams_draw_into_a_given_axes(name):
    fig, ax = plt.subplots(figsize=(10, 7))
    assert getattr(diagrams, name)(ax=ax) is fig
    assert ax.patches or ax.collections


@pytest.mark.parametrize(("name", "kwargs", "error"), [
    ("qkv_heads_diagram", {"n_heads": 3}, ValueError),     # does not divide d_model = 64
    ("qkv_heads_diagram", {"n_heads": 16, "d_model": 64}, ValueError),
    ("qkv_heads_diagram", {"n_heads": 0}, ValueError),
    ("transformer_block_diagram", {"norm_first": "yes"}, TypeError),
    ("causal_mask_diagram", {"n_tokens": 1}, ValueError),
    ("causal_mask_diagram", {"n_tokens": 9}, ValueError),
    ("kv_cache_diagram", {"t": 1}, ValueError),
    ("kv_cache_diagram", {"n_layers": 5}, ValueError),
    ("ivf_diagram", {"n_probe": 9}, ValueError),
    ("ivf_diagram", {"n_lists": 9}, ValueError),
    ("clip_diagram", {"n": 2}, ValueError),
    ("clip_diagram", {"n": 7}, ValueError),
])
def test_bad_arguments_are_refused(name, kwargs, error):
    with pytest.raises(error, match="|".join(kwargs)):
        getattr(diagrams, name)(**kwargs)


# --- the legibility check can fail --------------------------------------------------------------------------------


def test_text_overlaps_finds_overlapping_texts_and_only_those():
    fig, ax = canvas(8, 4)
    ax.text(1, 1, "first label", fontsize=12)
    ax.text(1.3, 1.05, "second label", fontsize=12)  # on top of the first
    ax.text(5, 3, "far away", fontsize=12)
    assert text_overlaps(fig) == [("first label", "second label")]
    assert "'first label' overlaps 'second label'" in layout_problems(fig)


def test_text_overlaps_finds_a_text_crossing_a_foreign_box():
    fig, ax = canvas(8, 4)
    box(ax, (2, 2), 1.5, 0.6, "inside")
    ax.text(2.5, 2.2, "intruder", fontsize=12)
    assert text_overlaps(fig) == [("intruder", "box around 'inside'")]


def test_layout_problems_finds_clipped_spilled_and_tiny_texts():
    fig, ax = canvas(8, 4)
    ax.text(7.8, 2, "runs off the right edge", fontsize=12)
    box(ax, (2, 1), 0.5, 0.3, "a label much wider than its box")
    ax.text(4, 3.5, "tiny", fontsize=6)
    problems = layout_problems(fig)
    assert any("'runs off the right edge' leaves the figure" in p for p in problems)
    assert any("'a label much wider than its box' spills out of its box" in p for p in problems)
    assert any("'tiny' is set in 6.0 pt" in p for p in problems)
    assert len(problems) == 3


def test_layout_problems_ignores_hidden_axis_labels_but_checks_visible_ones():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_axis_off()
    ax.text(0.5, 0.5, "alone", ha="center")
    assert layout_problems(fig) == []
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_yticks([0, 1e-3], labels=["zero", "almost zero"])  # two tick labels on top of each other
    assert any("zero" in a and "zero" in b for a, b in text_overlaps(fig))


# --- the geometry under the search diagrams -------------------------------------------------------------------------


def test_nearest_and_voronoi_cells_agree_with_brute_force():
    rng = np.random.default_rng(1)
    x, c = rng.uniform(-1, 1, (500, 2)), rng.uniform(-1, 1, (6, 2))
    brute = np.argmin(((x[:, None] - c[None]) ** 2).sum(-1), 1)
    assert np.array_equal(nearest(x, c), brute)
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    area = 0.0
    for j in range(6):
        poly = voronoi_cell(c, j, lo, hi)
        inside = matplotlib.path.Path(poly).contains_points(x)
        margin = np.sort(((x[:, None] - c[None]) ** 2).sum(-1), 1)
        clear = margin[:, 1] - margin[:, 0] > 1e-6  # points not on a boundary
        assert np.array_equal(inside[clear], (brute == j)[clear])
        area += 0.5 * abs(np.dot(poly[:, 0], np.roll(poly[:, 1], 1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], 1)))
    assert area == pytest.approx(4.0)  # the cells tile the box


def test_kmeans_reaches_a_fixed_point_and_beats_random_centroids():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 2)) + rng.integers(0, 3, (300, 1)) * 4.0
    c = lloyd(x, 3, np.random.default_rng(0), iters=30)
    assign = nearest(x, c)
    assert np.allclose(c, [x[assign == j].mean(0) for j in range(3)])  # each centroid is its cell's mean
    objective = ((x - c[assign]) ** 2).sum()
    random_c = x[rng.choice(300, 3, replace=False)]
    assert objective < ((x - random_c[nearest(x, random_c)]) ** 2).sum()
