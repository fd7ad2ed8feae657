r"""mmtutor: from a word vector to a language model and a multimodal search engine, one formula at a time.

The five ideas of the original write-up, and the chapter and module where each is built:

===  ============================  ========================  ======================  ==============
ch.  idea                          formula                   name                    module
===  ============================  ========================  ======================  ==============
1    word embedding                w = E(w)                  ``Embedding``           ``embedding``
2    context encoding (LSTM)       h = C(w, c)               ``ContextEncoding``     ``context``
3    attention pooling             a = A(h, H)               ``SelfAttention``       ``attention``
6    cosine similarity and search  sim(a, b) = a.b / |a||b|  ``cosine_similarity``   ``similarity``
7    modality mapping              v = M(x)                  ``multimodal_mapping``  ``alignment``
===  ============================  ========================  ======================  ==============

Chapters 4 (``tokenizer``, ``language_model``), 5 (``pretrained``), 8 and 9 (``applications``) and 10
(``distributed``) build on them. The write-up's names are re-exported here. They are resolved on first use
(PEP 562), so ``import mmtutor`` stays quick and each chapter's module loads only when it is needed.
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
