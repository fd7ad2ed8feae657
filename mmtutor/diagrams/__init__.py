r"""Conceptual diagrams for the chapters, drawn with matplotlib patches and arrows (no data needed).

Each function returns a :class:`~matplotlib.figure.Figure` (created with ``pyplot``, so the inline
backend shows it at the end of the cell); :func:`text_overlaps` and :func:`layout_problems` check that a
figure's texts neither overlap nor leave it.
"""

from ._drawing import layout_problems, text_overlaps
from .pipeline import pipeline_diagram
from .reading import lstm_cell_diagram, skipgram_diagram

__all__ = ["layout_problems", "lstm_cell_diagram", "pipeline_diagram", "skipgram_diagram", "text_overlaps"]
