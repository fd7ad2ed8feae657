r"""Chapters 3 and 4: queries, keys, values and heads; the encoder block; causal masks; the KV cache."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import _checks
from ._drawing import (
    INK,
    MUTED,
    ROLES,
    SERIES,
    SMALL,
    TITLE,
    arrow,
    box,
    canvas,
    cell,
    frame,
    label,
    op_circle,
    path_arrow,
    tag,
)

_TOKENS = ["a", "red", "circle", "left", "of", "a", "blue", "square"]


def _split_matrix(ax: Axes, x0: float, y0: float, w: float, h: float, n_heads: int, text: str) -> None:
    """A T x d_model matrix drawn as ``n_heads`` column strips, one colour per head, its name above."""
    for j in range(n_heads):
        cell(ax, x0 + j * w / n_heads, y0, w / n_heads, h, SERIES[j], edge="white", text=str(j + 1),
             color="white" if j != 6 else INK)
    label(ax, (x0 + w / 2, y0 + h + 0.2), text)


def qkv_heads_diagram(n_heads: int = 4, d_model: int = 64, ax: Axes | None = None) -> Figure:
    r"""Multi-head attention's data flow (chapter 3).

    $Q = XW^Q$, $K = XW^K$, $V = XW^V$ (each $T \times d_{\mathrm{model}}$); each is split by columns
    into $h$ heads of $d_k = d_{\mathrm{model}} / h$ columns; head $j$ computes
    $\mathrm{softmax}(Q_j K_j^\top / \sqrt{d_k})\, V_j$; the heads are concatenated back to
    $T \times d_{\mathrm{model}}$ and multiplied by $W^O$. One colour per head.
    ``n_heads`` in 1..8 must divide ``d_model`` (``ValueError`` otherwise). Draws on ``ax`` if given
    (limits 10 x 6); returns the Figure.
    """
    _checks.positive_int("n_heads", n_heads)
    _checks.positive_int("d_model", d_model)
    if n_heads > len(SERIES) or d_model % n_heads:
        raise ValueError(f"n_heads must lie in [1, {len(SERIES)}] and divide d_model, got n_heads={n_heads}, "
                         f"d_model={d_model}")
    d_k = d_model // n_heads
    fig, ax = canvas(10, 6, ax)
    tag(ax, (0.5, 5.75), "ch. 3")
    heads = f"{n_heads} head{'s' * (n_heads > 1)}"
    label(ax, (0.9, 5.75), f"Queries, keys, values and the split into h = {heads}", fontsize=TITLE, ha="left",
          weight="bold")
    label(ax, (5.0, 5.3), f"$d_k = d_{{\\mathrm{{model}}}} / h = {d_model} / {n_heads} = {d_k}$ columns per head",
          fontsize=12)

    # X -> W^Q, W^K, W^V -> Q, K, V (split into heads)
    box(ax, (0.7, 2.8), 0.8, 1.6, "$X$", role="data", fontsize=14)
    label(ax, (0.7, 1.75), "$T \\times d_{\\mathrm{model}}$", va="top")
    top, bottom, gap = 4.65, 0.95, 0.1
    hh = min(0.7, (top - bottom - gap * (n_heads - 1)) / n_heads)  # height of one head's box
    span = n_heads * hh + (n_heads - 1) * gap
    rows = {"Q": 4.2, "K": 2.8, "V": 1.4}
    for name, y in rows.items():
        arrow(ax, (1.1, 2.8), (1.65, y))
        box(ax, (2.0, y), 0.7, 0.55, f"$W^{name}$", role="op", fontsize=12)
        arrow(ax, (2.35, y), (2.85, y))
        _split_matrix(ax, 2.9, y - 0.4, 1.2, 0.8, n_heads, f"${name} = XW^{name}$")
        arrow(ax, (4.15, y), (4.6, 2.8 + np.sign(y - 2.8) * min(0.63, span / 2 - 0.05)), color=MUTED)

    # one box per head
    frame(ax, 4.6, 2.8 - span / 2 - 0.12, 3.05, span + 0.24, ls="--")
    for j in range(n_heads):
        y = 2.8 + span / 2 - hh / 2 - j * (hh + gap)
        box(ax, (6.125, y), 2.85, hh, f"head {j + 1}: $\\mathrm{{softmax}}(Q_{{{j + 1}}} K_{{{j + 1}}}^\\top / "
            f"\\sqrt{{d_k}})\\, V_{{{j + 1}}}$", fontsize=SMALL, facecolor="white", edgecolor=SERIES[j], lw=2)
    label(ax, (6.125, 2.8 - span / 2 - 0.3), f"head $j$ sees only its $d_k = {d_k}$ columns", va="top")

    # concatenate, multiply by W^O
    arrow(ax, (7.7, 2.8), (8.1, 3.55), color=MUTED)
    _split_matrix(ax, 8.1, 3.2, 1.2, 0.8, n_heads, "concatenate")
    arrow(ax, (8.7, 3.15), (8.7, 2.7))
    box(ax, (8.7, 2.4), 0.7, 0.55, "$W^O$", role="op", fontsize=12)
    arrow(ax, (8.7, 2.1), (8.7, 1.65))
    box(ax, (8.7, 1.3), 1.2, 0.65, "output", role="out")
    label(ax, (8.7, 0.8), "$T \\times d_{\\mathrm{model}}$", va="top")
    return fig


def transformer_block_diagram(norm_first: bool = False, ax: Axes | None = None) -> Figure:
    r"""One Transformer encoder block (chapter 3): multi-head attention and a feed-forward net, each with
    a residual connection and a layer norm.

    Post-LN (``norm_first=False``, the 2017 paper and BERT): $X' = \mathrm{LN}(X + \mathrm{MHA}(X))$,
    $Y = \mathrm{LN}(X' + \mathrm{FFN}(X'))$. Pre-LN (``norm_first=True``, GPT-2):
    $X' = X + \mathrm{MHA}(\mathrm{LN}(X))$, $Y = X' + \mathrm{FFN}(\mathrm{LN}(X'))$. As
    ``mmtutor.transformer.TransformerEncoderBlock``. Draws on ``ax`` if given (limits 10 x 4.2);
    returns the Figure.
    """
    if not isinstance(norm_first, bool):
        raise TypeError(f"norm_first must be a bool, got {norm_first!r}")
    fig, ax = canvas(10, 4.2, ax)
    variant = "pre-LN, arranged as in GPT-2" if norm_first else "post-LN, as in the 2017 paper and BERT"
    tag(ax, (0.5, 3.95), "ch. 3")
    label(ax, (0.9, 3.95), f"The Transformer encoder block ({variant})", fontsize=TITLE, ha="left", weight="bold")

    mha = ("multi-head\nattention", 1.35, "op")
    ffn = ("feed-forward\nLinear, GELU,\nLinear", 1.35, "op")
    norm = ("layer\nnorm", 0.95, "space")
    add = ("+", 0.4, None)
    order = [norm, mha, add, norm, ffn, add] if norm_first else [mha, add, norm, ffn, add, norm]
    y, h = 1.95, 1.05
    free = (9.3 - 0.75) - sum(w for _, w, _ in order)
    gap = free / (len(order) + 1)
    frame(ax, 0.75, 1.15, 8.55, 2.15, ls="--")
    label(ax, (9.25, 1.3), "$\\times N$ blocks", ha="right", color=MUTED)
    label(ax, (0.3, y), "$X$", fontsize=14)
    x, right_of, adds, lefts = 0.75 + gap, 0.45, [], []
    for text, w, role in order:
        arrow(ax, (right_of, y), (x, y))
        lefts.append(x)
        if role is None:
            op_circle(ax, (x + w / 2, y), "$+$", r=w / 2)
            adds.append(x + w / 2)
        else:
            box(ax, (x + w / 2, y), w, h, text, role=role, fontsize=SMALL)
        right_of, x = x + w, x + w + gap
    arrow(ax, (right_of, y), (9.55, y))
    label(ax, (9.75, y), "$Y$", fontsize=14)

    # residual connections: each sub-layer (with its pre-norm, if any) is bypassed: elements 0-2 and 3-5
    starts = [lefts[0] - gap / 2, lefts[3] - gap / 2]
    for x0, x1 in zip(starts, adds, strict=True):
        path_arrow(ax, [(x0, y), (x0, 2.95), (x1, 2.95), (x1, y + 0.2)], color=ROLES["out"][1], lw=1.6)
        label(ax, ((x0 + x1) / 2, 3.12), "residual", color=ROLES["out"][1])

    if norm_first:
        eq = "$X' = X + \\mathrm{MHA}(\\mathrm{LN}(X)), \\quad Y = X' + \\mathrm{FFN}(\\mathrm{LN}(X'))$"
        note = "the residual path stays un-normalised; one more layer norm after the last block"
    else:
        eq = "$X' = \\mathrm{LN}(X + \\mathrm{MHA}(X)), \\quad Y = \\mathrm{LN}(X' + \\mathrm{FFN}(X'))$"
        note = "each sub-layer's sum is normalised; deep stacks need a learning-rate warm-up"
    label(ax, (5.0, 0.72), eq, fontsize=12)
    label(ax, (5.0, 0.3), note, color=MUTED)
    return fig


def _mask_grid(ax: Axes, x0: float, y0: float, size: float, tokens: list[str], causal: bool) -> None:
    """A T x T grid of query rows and key columns; allowed cells filled, masked cells grey with -inf."""
    T = len(tokens)
    for r in range(T):  # query position r (top row first)
        for c in range(T):  # key position c
            allowed = c <= r or not causal
            cell(ax, x0 + c * size, y0 + (T - 1 - r) * size, size, size,
                 ROLES["data"][1] if allowed else ROLES["muted"][0], edge="white", lw=1.5,
                 text="" if allowed else "$-\\infty$", color=MUTED)
        label(ax, (x0 - 0.1, y0 + (T - 1 - r + 0.5) * size), tokens[r], ha="right")
        label(ax, (x0 + (r + 0.5) * size, y0 + T * size + 0.1), tokens[r], va="bottom", rotation=90)
    label(ax, (x0 + T * size / 2, y0 - 0.2), "keys (attended to)", va="top", color=MUTED)


def causal_mask_diagram(n_tokens: int = 6, ax: Axes | None = None) -> Figure:
    r"""Which keys each query may attend to (chapters 4 and 5): BERT's bidirectional pattern, where every
    token sees every token, next to the causal (lower-triangular) pattern of GPT and Llama, where token
    $t$ sees tokens $1 \ldots t$. Masked scores are set to $-\infty$ before the softmax, so their weight
    is exactly 0 (True = may attend in ``mmtutor``'s masks). ``n_tokens`` in 2..8. Draws on ``ax`` if
    given (limits 10 x 5.4); returns the Figure.
    """
    _checks.positive_int("n_tokens", n_tokens, minimum=2)
    if n_tokens > len(_TOKENS):
        raise ValueError(f"n_tokens must lie in [2, {len(_TOKENS)}], got {n_tokens}")
    fig, ax = canvas(10, 5.4, ax)
    tag(ax, (0.5, 5.15), "ch. 4")
    label(ax, (0.9, 5.15), "Attention masks: who may look at whom", fontsize=TITLE, ha="left", weight="bold")
    tokens = _TOKENS[:n_tokens]
    size = 2.8 / n_tokens
    for x0, causal, title in ((1.55, False, "bidirectional (BERT): every token sees all"),
                              (6.65, True, "causal (GPT, Llama): token $t$ sees $1 \\ldots t$")):
        _mask_grid(ax, x0, 0.95, size, tokens, causal)
        label(ax, (x0 + 1.4, 4.7), title)
        label(ax, (x0 - 0.75, 0.95 + 1.4), "queries", rotation=90, color=MUTED)
    label(ax, (5.0, 0.3), "grey: score set to $-\\infty$ before the softmax, so its weight is exactly 0",
          color=MUTED)
    return fig


def kv_cache_diagram(n_layers: int = 2, t: int = 5, ax: Axes | None = None) -> Figure:
    r"""The KV cache of a decoder (chapters 4 and 5): every layer keeps the keys and values of all past
    positions; at step $t$ it computes $\vec q_t, \vec k_t, \vec v_t$ for the new token only, appends one
    column to its $K$ and $V$, and attends over all $t$ columns: $\mathrm{softmax}(K^\top \vec q_t /
    \sqrt{d_k})$ weights the columns of $V$. Step $t + 1$ appends the next column (dashed). As
    ``mmtutor.language_model.KVCache``. ``n_layers`` in 1..4, ``t`` (the current step) in 2..8. Draws on
    ``ax`` if given (limits 10 x 2.6 + 1.45 per layer); returns the Figure.
    """
    _checks.positive_int("n_layers", n_layers)
    _checks.positive_int("t", t, minimum=2)
    if n_layers > 4 or t > len(_TOKENS):
        raise ValueError(f"n_layers must lie in [1, 4] and t in [2, {len(_TOKENS)}], got n_layers={n_layers}, "
                         f"t={t}")
    height = 2.6 + 1.45 * n_layers
    fig, ax = canvas(10, height, ax)
    tag(ax, (0.5, height - 0.25), "ch. 4")
    label(ax, (0.9, height - 0.25), f"The KV cache at step t = {t}: one new column per layer", fontsize=TITLE,
          ha="left", weight="bold")
    new, old = ROLES["op"][1], ROLES["data"][1]
    # the tokens so far, the newest last
    label(ax, (0.3, height - 0.8), "tokens", ha="left", weight="bold")
    for c, word in enumerate(_TOKENS[:t]):
        box(ax, (1.55 + 0.8 * c, height - 0.8), 0.72, 0.36, word, role="op" if c == t - 1 else "data",
            fontsize=SMALL)

    size, d_k = min(0.28, 3.6 / (2 * (t + 1) + 1.8)), 3
    k_x = 3.0
    v_x = k_x + (t + 1) * size + 0.5
    for layer in range(n_layers):
        y_c = height - 1.95 - 1.45 * layer
        y0 = y_c - d_k * size / 2
        label(ax, (0.3, y_c), f"layer {layer + 1}", ha="left", weight="bold")
        box(ax, (1.95, y_c), 1.3, 0.7, "new token:\n$\\vec q_t, \\vec k_t, \\vec v_t$", role="op", fontsize=SMALL)
        for x0, name in ((k_x, "K"), (v_x, "V")):
            for c in range(t + 1):
                for r in range(d_k):
                    if c < t:
                        cell(ax, x0 + c * size, y0 + r * size, size, size, new if c == t - 1 else old,
                             edge="white")
                    else:  # the column step t + 1 will append
                        cell(ax, x0 + c * size, y0 + r * size, size, size, "none", edge=MUTED, lw=0.8)
                        ax.patches[-1].set_linestyle("--")
            label(ax, (x0 + (t + 1) * size / 2, y0 + d_k * size + 0.17), f"${name}$: {t - 1} kept, 1 new")
        # k_t and v_t go into the new columns (routed below the grids)
        x_newk, x_newv, y_bus = k_x + (t - 0.5) * size, v_x + (t - 0.5) * size, y0 - 0.2
        path_arrow(ax, [(1.95, y_c - 0.35), (1.95, y_bus), (x_newv, y_bus), (x_newv, y0)], color=new, lw=1.2)
        arrow(ax, (x_newk, y_bus), (x_newk, y0), color=new, lw=1.2)
        right = v_x + (t + 1) * size
        arrow(ax, (right + 0.1, y_c), (right + 0.45, y_c), color=MUTED)
        box(ax, ((right + 0.5 + 9.75) / 2, y_c), 9.75 - right - 0.5, 0.7,
            "$\\mathrm{softmax}(K^\\top \\vec q_t / \\sqrt{d_k})$\nweights the columns of $V$", role="space",
            fontsize=SMALL)

    # legend and the point of it
    for k, (face, edge, text) in enumerate(((old, "white", "kept from earlier steps"),
                                            (new, "white", "computed at step t"),
                                            ("none", MUTED, "appended at step t + 1"))):
        cell(ax, 0.3 + 3.1 * k, 1.05, 0.26, 0.26, face, edge=edge, lw=0.8)
        if face == "none":
            ax.patches[-1].set_linestyle("--")
        label(ax, (0.66 + 3.1 * k, 1.18), text, ha="left")
    label(ax, (0.3, 0.5), f"without the cache, step t would recompute the keys and values of all {t} tokens in "
          "every layer", ha="left", color=MUTED)
    return fig
