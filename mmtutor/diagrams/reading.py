r"""Chapters 1 and 2: skip-gram with negative sampling, and the LSTM cell."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._drawing import MUTED, ROLES, SMALL, TITLE, arrow, box, canvas, cell, frame, label, op_circle, path_arrow, tag

_SENTENCE = ["police", "said", "the", "prime", "minister", "was", "told", "on", "friday"]
_CENTRE, _WINDOW = 4, 2
_NEGATIVES = ["of", "league", "rain"]


def _table(ax: Axes, x0: float, top: float, rows: int, cols: int, size: float, height: float,
           highlight: dict[int, str]) -> list[float]:
    """A V x d table as a grid of cells; ``highlight`` maps a row to a role. Returns each row's centre y."""
    centres = []
    for r in range(rows):
        y0 = top - (r + 1) * height
        role = highlight.get(r)
        face = ROLES[role][1] if role else ROLES["muted"][0]
        for c in range(cols):
            cell(ax, x0 + c * size, y0, size, height, face, edge="white")
        centres.append(y0 + height / 2)
    return centres


def skipgram_diagram(ax: Axes | None = None) -> Figure:
    r"""Skip-gram with negative sampling, one training example (chapter 1).

    A centre word ("minister") and its context window ($m = 2$ words each side); one positive pair
    (minister, prime) and $K = 3$ negative words drawn from the noise distribution
    $P_n(w) \propto \mathrm{count}(w)^{3/4}$; the centre word's row of the input table $E$ and the
    other words' rows of the output table $U$ (often written $E'$); each score
    $\sigma(\vec w_c \cdot \vec u)$ is pushed towards label 1 for the positive and 0 for the negatives:
    $\mathcal{L} = -\log\sigma(\vec w_c \cdot \vec u_o) - \sum_k \log\sigma(-\vec w_c \cdot \vec u_{n_k})$.
    Draws on ``ax`` if given (its limits are set to the diagram's 10 x 6.2 units); returns the Figure.
    """
    fig, ax = canvas(10, 6.2, ax)
    tag(ax, (0.5, 5.95), "ch. 1")
    label(ax, (0.9, 5.95), "Skip-gram with negative sampling: one positive pair, K = 3 noise words",
          fontsize=TITLE, ha="left", weight="bold")

    # the sentence, its centre word and its window
    tw, gap, ys = 0.95, 0.1, 5.2
    xs = [0.33 + tw / 2 + i * (tw + gap) for i in range(len(_SENTENCE))]
    for i, (x, word) in enumerate(zip(xs, _SENTENCE, strict=True)):
        role = "data" if i == _CENTRE else ("out" if abs(i - _CENTRE) <= _WINDOW else "muted")
        box(ax, (x, ys), tw, 0.42, word, role=role, lw=2.4 if word == "prime" else 1.4)
    left, right = xs[_CENTRE - _WINDOW] - tw / 2 - 0.05, xs[_CENTRE + _WINDOW] + tw / 2 + 0.05
    frame(ax, left, ys - 0.3, right - left, 0.6, color=ROLES["out"][1], ls="--")
    label(ax, (right + 0.1, ys - 0.45), "context window: m = 2 words each side of the centre word",
          ha="right", va="top", color=ROLES["out"][1])

    # the input table E with the centre word's row
    size, top = 0.22, 4.2
    e_rows = _table(ax, 0.95, top, 10, 5, size, size, {3: "data"})
    label(ax, (1.5, 4.45), "input table $E$  ($V \\times d$)")
    label(ax, (0.9, e_rows[3]), "minister", ha="right", color=ROLES["data"][1])
    label(ax, (1.5, 1.75), "$\\vec w_c$ = the row\nof the centre word", va="top")

    # the output table U (E') with the positive and the negatives' rows, aligned with the scores
    u_rows = _table(ax, 7.15, top, 13, 5, size, 0.2, {1: "out", 4: "neg", 7: "neg", 10: "neg"})
    score_y = [u_rows[r] for r in (1, 4, 7, 10)]  # one score per highlighted row, on the same line
    label(ax, (7.7, 4.45), "output table $U$ (or $E'$)")
    for k, (y, word) in enumerate(zip(score_y, ["prime", *_NEGATIVES], strict=True)):
        label(ax, (8.35, y), word, ha="left", color=ROLES["out" if k == 0 else "neg"][1])

    # the scores: sigmoid of dot products, with their labels
    for k, (y, word) in enumerate(zip(score_y, ["prime", *_NEGATIVES], strict=True)):
        positive = k == 0
        text = f"$\\sigma(\\vec w_c \\cdot \\vec u_{{\\mathrm{{{word}}}}})$  $\\to$  label {1 if positive else 0}"
        box(ax, (4.65, y), 3.3, 0.46, text, role="out" if positive else "neg")
        arrow(ax, (2.1, e_rows[3]), (3.0, y), color=ROLES["data"][1], lw=1.2)
        arrow(ax, (7.1, y), (6.3, y), color=ROLES["out" if positive else "neg"][1], lw=1.2)
    label(ax, (4.65, 4.35), "one positive pair (minister, prime)", color=ROLES["out"][1])

    # the noise distribution P_n(w) ~ count^(3/4), a few bars, the sampled words in red
    x0, base = 5.9, 0.55
    for r in range(14):
        height = 0.85 * (r + 1) ** -0.75
        role = "neg" if r in (0, 5, 9) else "muted"
        cell(ax, x0 + r * 0.17, base, 0.13, height, ROLES[role][1] if role == "neg" else "#c7cbd1", edge="none")
    label(ax, (x0 + 1.2, 1.5), "$K = 3$ negatives drawn from $P_n(w) \\propto \\mathrm{count}(w)^{3/4}$")
    label(ax, (x0 + 2.55, 0.75), "words, by\nfrequency", ha="left", color=MUTED)

    # the loss
    label(ax, (0.3, 0.95), "$\\mathcal{L} = -\\log\\sigma(\\vec w_c \\cdot \\vec u_o)"
          " - \\sum_{k=1}^{K}\\log\\sigma(-\\vec w_c \\cdot \\vec u_{n_k})$", ha="left", fontsize=12)
    label(ax, (0.3, 0.45), "learned: both tables; kept: $E$", ha="left", color=MUTED)
    return fig


def lstm_cell_diagram(ax: Axes | None = None) -> Figure:
    r"""The LSTM cell of chapter 2, one time step, with its four gates.

    $\vec x_t$ and $\vec h_{t-1}$ are concatenated and feed the gates $i_t$ (input), $f_t$ (forget),
    $g_t$ (candidate, tanh) and $o_t$ (output); the cell state runs along the top,
    $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, and $h_t = o_t \odot \tanh(c_t)$. ``nn.LSTM`` stacks the
    gates' weights in the order i, f, g, o (``weight_ih (4H, I)``, ``weight_hh (4H, H)``), as does
    ``mmtutor.context.LSTMCell``. Draws on ``ax`` if given (limits 10 x 6.1); returns the Figure.
    """
    fig, ax = canvas(10, 6.1, ax)
    tag(ax, (0.5, 5.85), "ch. 2")
    label(ax, (0.9, 5.85), "The LSTM cell: four gates and a cell state", fontsize=TITLE, ha="left", weight="bold")
    label(ax, (5.0, 5.4), "$i_t, f_t, o_t = \\sigma(W_{\\cdot}\\,[x_t, h_{t-1}] + b_{\\cdot}), \\quad"
          " g_t = \\tanh(W_g\\,[x_t, h_{t-1}] + b_g)$", fontsize=12)
    label(ax, (5.0, 5.0), "$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t, \\quad h_t = o_t \\odot \\tanh(c_t)$",
          fontsize=12)
    frame(ax, 1.2, 0.95, 7.4, 3.75, face="#fafafa")
    label(ax, (1.35, 4.5), "one time step", ha="left", color=MUTED)

    cell_y, bus_y, gate_y, mid_y = 4.2, 1.45, 2.35, 3.3
    f_x, i_x, g_x, o_x, out_x = 2.9, 3.95, 5.0, 6.3, 7.4
    # the cell state line c_{t-1} -> c_t
    arrow(ax, (0.35, cell_y), (9.6, cell_y), lw=2.2)
    label(ax, (0.35, cell_y + 0.22), "$c_{t-1}$", ha="left", fontsize=12)
    label(ax, (9.6, cell_y + 0.22), "$c_t$", ha="right", fontsize=12)
    op_circle(ax, (f_x, cell_y), "$\\times$")
    op_circle(ax, (g_x, cell_y), "$+$")

    # inputs: h_{t-1} from the left, x_t from below, concatenated on the bus
    path_arrow(ax, [(0.35, bus_y), (o_x, bus_y)], head=False, lw=2.2)
    arrow(ax, (2.0, 0.2), (2.0, bus_y), lw=2.2)
    label(ax, (0.35, bus_y + 0.22), "$h_{t-1}$", ha="left", fontsize=12)
    label(ax, (1.85, 0.35), "$x_t$", ha="right", fontsize=12)
    label(ax, (2.1, bus_y - 0.25), "$[x_t, h_{t-1}]$", ha="left")

    # the four gates
    for x, name, fn in ((f_x, "forget", "$\\sigma$"), (i_x, "input", "$\\sigma$"), (g_x, "candidate", "tanh"),
                        (o_x, "output", "$\\sigma$")):
        box(ax, (x, gate_y), 0.9, 0.62, f"{name}\n{fn}", role="op", fontsize=SMALL)
        arrow(ax, (x, bus_y), (x, gate_y - 0.31))
    arrow(ax, (f_x, gate_y + 0.31), (f_x, cell_y - 0.17))
    label(ax, (f_x + 0.1, mid_y), "$f_t$", ha="left", fontsize=12)
    arrow(ax, (g_x, gate_y + 0.31), (g_x, mid_y - 0.17))
    label(ax, (g_x + 0.1, 2.88), "$g_t$", ha="left", fontsize=12)
    path_arrow(ax, [(i_x, gate_y + 0.31), (i_x, mid_y), (g_x - 0.17, mid_y)])
    label(ax, (i_x - 0.1, 2.95), "$i_t$", ha="right", fontsize=12)
    op_circle(ax, (g_x, mid_y), "$\\times$")
    arrow(ax, (g_x, mid_y + 0.17), (g_x, cell_y - 0.17))
    label(ax, (g_x + 0.1, 3.76), "$i_t \\odot g_t$", ha="left")

    # the output: h_t = o_t * tanh(c_t)
    arrow(ax, (out_x, cell_y), (out_x, mid_y + 0.21))
    box(ax, (out_x, mid_y), 0.7, 0.42, "tanh", role="op", fontsize=SMALL)
    arrow(ax, (out_x, mid_y - 0.21), (out_x, gate_y + 0.17))
    op_circle(ax, (out_x, gate_y), "$\\times$")
    arrow(ax, (o_x + 0.45, gate_y), (out_x - 0.17, gate_y))
    label(ax, (6.95, gate_y + 0.12), "$o_t$", va="bottom", fontsize=12)
    h_y = 1.15  # below the bus, so h_{t-1} does not seem to run on into h_t
    path_arrow(ax, [(out_x, gate_y - 0.17), (out_x, h_y), (9.6, h_y)], lw=2.2)
    label(ax, (9.6, h_y + 0.22), "$h_t$", ha="right", fontsize=12)
    label(ax, (9.6, 0.82), "output, and the next step's $h$", ha="right", color=MUTED)

    # nn.LSTM's gate order
    label(ax, (2.6, 0.4), "nn.LSTM stacks the gate weights (weight_ih: 4H x I) as", ha="left", color=MUTED)
    for k, name in enumerate("ifgo"):
        box(ax, (7.0 + 0.5 * k, 0.4), 0.42, 0.34, name, role="op", fontsize=SMALL)
    return fig
