r"""The Lee corpus of 50 news documents with human similarity judgements (Lee, Pincombe and Welsh 2005).

gensim ships the 50 short news documents (``lee.cor``, one per line, latin-1) and the judgements
(``similarities0-1.txt``): students rated every pair of documents from 1 (unrelated) to 5 (alike); the file
holds the mean ratings of each pair scaled to [0, 1], as an upper-triangular 50 x 50 matrix with ones on the
diagonal. It is the classic test of document similarity: a model's pairwise similarities should rank the
1,225 pairs as people did.

For question answering the documents are cut into passages of ``sentences_per_passage`` sentences
(:func:`lee_passages`), the unit a retriever returns and a prompt quotes.
"""

from __future__ import annotations

import functools
import re

import torch

from .._checks import positive_int

N_DOCUMENTS = 50


def _datapath(name: str) -> str:
    from gensim.test.utils import datapath

    return datapath(name)


@functools.lru_cache(maxsize=1)
def _documents() -> tuple[str, ...]:
    with open(_datapath("lee.cor"), encoding="latin-1") as f:
        docs = tuple(" ".join(line.split()) for line in f if line.strip())  # one document per line
    if len(docs) != N_DOCUMENTS:
        raise ValueError(f"lee.cor should hold {N_DOCUMENTS} documents, found {len(docs)}")
    return docs


def load_lee_judged_documents() -> list[str]:
    """The 50 documents of ``lee.cor`` as strings (white space collapsed), in the order of the judgements."""
    return list(_documents())


def load_lee_similarities() -> torch.Tensor:
    r"""The human similarity of every pair of documents, a symmetric ``(50, 50)`` float64 tensor in [0, 1].

    The file stores the upper triangle $U$ (ones on the diagonal); the full matrix is $U + U^\top - I$.
    """
    rows = []
    with open(_datapath("similarities0-1.txt"), encoding="utf-8") as f:
        rows = [[float(v) for v in line.split()] for line in f if line.strip()]
    U = torch.tensor(rows, dtype=torch.float64)  # (50, 50) upper triangle
    if U.shape != (N_DOCUMENTS, N_DOCUMENTS) or U.tril(-1).abs().sum() != 0:
        raise ValueError(f"similarities0-1.txt should be an upper-triangular 50 x 50 matrix, got {tuple(U.shape)}")
    return U + U.T - torch.diag(U.diagonal())


_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"']))\s+(?=[\"'A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: cut after ``.``, ``!`` or ``?`` (and a closing quote) before a capital or a digit.

    Good enough for these news texts; abbreviations such as "Mr Mugabe" have no full stop in them, while
    "U.S. Central Command" is cut after "U.S." (the passages below only need sentences of about the right size).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def lee_passages(sentences_per_passage: int = 2) -> tuple[list[str], list[int]]:
    """The documents cut into passages of consecutive sentences: ``(passages, document of each passage)``."""
    n = positive_int("sentences_per_passage", sentences_per_passage)
    passages, doc_of = [], []
    for d, doc in enumerate(_documents()):
        sentences = split_sentences(doc)
        for start in range(0, len(sentences), n):
            passages.append(" ".join(sentences[start:start + n]))
            doc_of.append(d)
    return passages, doc_of
