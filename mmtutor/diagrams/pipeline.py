r"""Chapter 0's map of the whole workbook, drawn as one pipeline."""

from __future__ import annotations

from matplotlib.figure import Figure

from ._drawing import MUTED, SMALL, TITLE, arrow, box, canvas, label, path_arrow, tag

# (label inside the box, chapter tag or None) for Part I's row, left to right
_PART_ONE = [
    ("raw text\n'a red circle'", None),
    ("tokens\nids 17, 4, 92", "ch. 1, 4"),
    ("embeddings\n$\\vec w = E(w)$", "ch. 1"),
    ("context (LSTM)\n$\\vec h = C(\\vec w, \\vec c)$", "ch. 2"),
    ("attention\n$\\vec a = A(\\vec h, \\vec H)$", "ch. 3"),
    ("language model\ngenerates text", "ch. 4"),
]


def pipeline_diagram() -> Figure:
    r"""The workbook's pipeline on one page (chapter 0, "the map").

    Part I (top row): text becomes tokens, tokens become vectors $\vec w = E(w)$ (chapter 1), vectors
    get context $\vec h = C(\vec w, \vec c)$ from an LSTM (chapter 2), attention mixes them,
    $\vec a = A(\vec h, \vec H)$ (chapter 3), and a language model generates text (chapter 4); chapter 5
    runs pretrained BERT and Llama models through the same pieces (all but the LSTM). Part II (bottom
    row): images, text and sound go through encoders $\vec v = M(\vec x)$ into one shared space
    (chapter 7), where cosine similarity $\mathrm{sim}(\vec a, \vec b)$ and fast search (chapter 6) serve the
    applications (chapters 8-9: retrieval, RAG, translation, recommendation), scaled out in chapter 10.
    Returns the Figure (10 x 6.45 inches).
    """
    fig, ax = canvas(10, 6.45)
    tag(ax, (0.5, 6.15), "ch. 0")
    label(ax, (0.9, 6.15), "The workbook at a glance: each box is built in the chapter on its tag",
          fontsize=TITLE, ha="left", weight="bold")
    label(ax, (0.2, 5.72), "Part I   Reading and writing text", ha="left", color=MUTED, weight="bold")

    # Part I: six boxes in a row
    w, h, y = 1.38, 0.95, 4.55
    xs = [0.89 + 1.66 * i for i in range(len(_PART_ONE))]
    for i, (x, (text, chapter)) in enumerate(zip(xs, _PART_ONE, strict=True)):
        box(ax, (x, y), w, h, text, role="data" if i < 2 else ("out" if i == 5 else "op"))
        if chapter:
            tag(ax, (x, y + h / 2 + 0.22), chapter)
        if i:
            arrow(ax, (xs[i - 1] + w / 2, y), (x - w / 2, y))

    # chapter 5: a bracket over tokens .. language model, above the tags
    left, right, yb = xs[1] - w / 2, xs[5] + w / 2, 5.5
    path_arrow(ax, [(left, yb - 0.08), (left, yb), (right, yb), (right, yb - 0.08)], color=MUTED, head=False)
    tag(ax, (3.35, 5.72), "ch. 5")
    label(ax, (3.75, 5.72), "pretrained BERT and Llama through your own code (all but the LSTM)", ha="left")

    label(ax, (0.2, 3.3), "Part II   Finding and aligning", ha="left", color=MUTED, weight="bold")
    label(ax, (9.0, 3.3), "Part III   Applications and scale", ha="right", color=MUTED, weight="bold")

    # Part II: three modalities -> encoders -> shared space -> search -> applications
    yc, hb = 1.85, 1.65
    for j, name in enumerate(["images", "text", "sound"]):
        yj = yc + 0.6 * (1 - j)
        box(ax, (0.75, yj), 1.1, 0.45, name, role="data")
        arrow(ax, (1.3, yj), (1.75, yc + 0.35 * (1 - j)))
    stages = [  # (centre x, width, label, role, chapter)
        (2.5, 1.5, "encoders\n$\\vec v = M(\\vec x)$\n(text: the layers\nof Part I)", "op", "ch. 7"),
        (4.45, 1.5, "one shared\nspace\n(unit vectors)", "space", "ch. 7"),
        (6.45, 1.75, "similarity search\n$\\mathrm{sim}(\\vec a, \\vec b)$\nexact, IVF, PQ", "space", "ch. 6"),
        (8.8, 1.95, "applications\nretrieval, RAG,\ntranslation,\nrecommendation", "out", "ch. 8-9"),
    ]
    for k, (x, wk, text, role, chapter) in enumerate(stages):
        box(ax, (x, yc), wk, hb, text, role=role)
        tag(ax, (x, yc + hb / 2 + 0.22), chapter)
        if k:
            prev_x, prev_w = stages[k - 1][:2]
            arrow(ax, (prev_x + prev_w / 2, yc), (x - wk / 2, yc))

    # generation feeds RAG's answer: language model -> applications
    x_rag = xs[5] + 0.26  # right of the applications tag
    arrow(ax, (x_rag, y - h / 2), (x_rag, yc + hb / 2), color=MUTED, ls="--")
    label(ax, (x_rag - 0.1, 3.75), "generation writes RAG's answer", ha="right", color=MUTED)

    # chapter 10 under the search side
    box(ax, (7.6, 0.5), 4.3, 0.42, "scaling out: torch.distributed splits search and training",
        role="muted", fontsize=SMALL)
    tag(ax, (5.05, 0.5), "ch. 10")
    return fig
