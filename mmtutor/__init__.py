"""mmtutor: from a word vector to a multimodal search engine, one formula at a time.

The five ideas of the workbook and where each is built:

=====  ==============================  ===========================  ===================
 ch.   idea                            formula                      seed name
=====  ==============================  ===========================  ===================
 1     word embedding                  w = E(w)                     ``Embedding``
 2     context encoding (LSTM)         h = C(w, c)                  ``ContextEncoding``
 3     self-attention                  a = A(h, H)                  ``SelfAttention``
 4     cosine similarity and search    sim(a, b) = a.b / |a||b|     ``cosine_similarity``
 5     modality mapping                v = M(x)                     ``multimodal_mapping``
=====  ==============================  ===========================  ===================

The seed names are re-exported here. They are resolved on first use (PEP 562), so
``import mmtutor`` stays quick and each chapter's module loads only when it is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .device import get_device, seed_everything

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Embedding": "mmtutor.embedding",
    "ContextEncoding": "mmtutor.context",
    "SelfAttention": "mmtutor.attention",
    "cosine_similarity": "mmtutor.similarity",
    "multimodal_mapping": "mmtutor.alignment",
    "train": "mmtutor.train",
}

__all__ = ["get_device", "seed_everything", *_LAZY]

if TYPE_CHECKING:  # for editors and type checkers: the same names, imported eagerly
    from .alignment import multimodal_mapping as multimodal_mapping
    from .attention import SelfAttention as SelfAttention
    from .context import ContextEncoding as ContextEncoding
    from .embedding import Embedding as Embedding
    from .similarity import cosine_similarity as cosine_similarity
    from .train import train as train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'mmtutor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
