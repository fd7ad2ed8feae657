r"""Conceptual diagrams for the chapters, drawn with matplotlib patches and arrows (no data needed).

==============================  ========  ===========================================================
function                        chapter   what it shows
==============================  ========  ===========================================================
``pipeline_diagram``            0         the whole workbook: text to generation; modalities to search
``skipgram_diagram``            1         a centre word, its window, one positive and K negatives
``lstm_cell_diagram``           2         the LSTM cell: gates i, f, g, o and the cell state
``qkv_heads_diagram``           3         X W^Q, X W^K, X W^V, the split into heads, concat, W^O
``transformer_block_diagram``   3         attention, add & norm, feed-forward, add & norm (post/pre-LN)
``causal_mask_diagram``         4, 5      BERT's bidirectional pattern beside the causal one
``kv_cache_diagram``            4, 5      keys and values kept per layer, one column per step
``ivf_diagram``                 6         Voronoi cells of k-means centroids, the n_probe probed
``pq_diagram``                  6         subvectors, codebooks, the code as bytes, look-up tables
``clip_diagram``                7         two towers, the N x N similarity matrix, two cross-entropies
==============================  ========  ===========================================================

Each function returns a :class:`~matplotlib.figure.Figure` made with ``pyplot`` (so the inline backend
shows it at the end of the cell; end the line with ``;`` to show it once). Single-panel diagrams take
``ax=`` to draw into an existing Axes. :func:`text_overlaps` and :func:`layout_problems` check that a
figure's texts neither overlap, nor spill out of their boxes, nor leave the figure.
"""

from ._drawing import layout_problems, text_overlaps
from .aligning import clip_diagram
from .attending import causal_mask_diagram, kv_cache_diagram, qkv_heads_diagram, transformer_block_diagram
from .pipeline import pipeline_diagram
from .reading import lstm_cell_diagram, skipgram_diagram
from .searching import ivf_diagram, pq_diagram

__all__ = [
    "clip_diagram",
    "causal_mask_diagram",
    "ivf_diagram",
    "kv_cache_diagram",
    "layout_problems",
    "lstm_cell_diagram",
    "pipeline_diagram",
    "pq_diagram",
    "qkv_heads_diagram",
    "skipgram_diagram",
    "text_overlaps",
    "transformer_block_diagram",
]
