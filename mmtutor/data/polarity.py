r"""Movie-review sentences labelled positive or negative (Pang and Lee), read from gensim's test data.

``pang_lee_polarity.cor`` holds 200 sentences of the sentence polarity data of Pang and Lee (2005), 100
positive and 100 negative, one per line as ``__label__pos text`` (fastText's format), already lower-cased
and tokenised (punctuation stands apart: ``simplistic , silly and tedious .``), in Windows-1252 (a few
dashes are byte 0x97).
"""

from __future__ import annotations

import functools

LABELS: tuple[str, ...] = ("neg", "pos")  # label 0 is negative, 1 positive


@functools.lru_cache(maxsize=1)
def _read() -> tuple[tuple[str, ...], tuple[int, ...]]:
    from gensim.test.utils import datapath

    texts, labels = [], []
    with open(datapath("pang_lee_polarity.cor"), encoding="cp1252") as f:  # a few dashes are Windows-1252 bytes
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            tag, _, text = line.strip().partition(" ")
            if not tag.startswith("__label__") or tag[len("__label__"):] not in LABELS or not text:
                raise ValueError(f"pang_lee_polarity.cor line {n}: expected '__label__pos|neg text', got {line[:40]!r}")
            texts.append(text)
            labels.append(LABELS.index(tag[len("__label__"):]))
    return tuple(texts), tuple(labels)


def load_polarity() -> tuple[list[str], list[int]]:
    """The 200 sentences and their labels (1 = positive, 0 = negative), in the file's order."""
    texts, labels = _read()
    return list(texts), list(labels)
