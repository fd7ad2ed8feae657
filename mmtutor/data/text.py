"""Text: tokens, a vocabulary, real English from gensim (chapter 1), and the word ids of small fixed vocabularies.

* ``tokenize``: lower-case words (letters and inner apostrophes), nothing else.
* ``Vocabulary``: id <-> word maps with a minimum count and an unknown token at id 0.
* ``load_lee_corpus``, ``load_word_pairs``: gensim's Lee background corpus (300 news articles, 59,576 tokens as
  ``tokenize`` counts them) and the WordSim-353 / SimLex-999 human similarity judgements, read from the files
  gensim installs (``gensim.test.utils.datapath``); nothing is downloaded.
* ``encode_words``: texts to padded ids in a small fixed vocabulary (the scenes' and the digits' captions).

The generated corpus of known word kinds lives in :mod:`mmtutor.data.kinds`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from .._checks import positive_int

UNK = "<unk>"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")

def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and keep its words: runs of letters, with apostrophes inside (``don't``).

    Digits and punctuation are dropped: ``tokenize("The cat's 2 hats!") == ["the", "cat's", "hats"]``. Anything
    but a ``str`` raises ``TypeError``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class Vocabulary:
    """Words <-> ids. Id 0 is the unknown token; the others are ordered by count (ties alphabetically).

    ``Vocabulary.build(sentences, min_count)`` keeps the words seen at least ``min_count`` times;
    every other word maps to ``<unk>``. ``counts[i]`` is how often word ``i`` occurs (for ``<unk>``: how
    many tokens were dropped), the statistic skip-gram's noise and subsampling are built from. Words that are
    not distinct non-empty strings, or counts of the wrong length, raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, words: Sequence[str], counts: Sequence[int] | None = None, unk: str = UNK) -> None:
        words = list(words)
        if any(not isinstance(w, str) or not w for w in words):
            raise TypeError("words must be non-empty strings")
        if unk in words:
            raise ValueError(f"the unknown token {unk!r} is added as id 0; do not list it among the words")
        if len(set(words)) != len(words):
            raise ValueError("the words of a vocabulary must be distinct")
        counts = [0] * (len(words) + 1) if counts is None else list(counts)
        if len(counts) != len(words) + 1:
            raise ValueError(f"counts needs one entry per word plus one for {unk!r}: "
                             f"expected {len(words) + 1}, got {len(counts)}")
        self.unk = unk
        self.itos: list[str] = [unk, *words]  # id -> word
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}  # word -> id
        self.counts = torch.tensor(counts, dtype=torch.long)  # (V,)

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_count: int = 1, unk: str = UNK) -> Vocabulary:
        """Count the tokens of ``sentences`` (lists of words) and keep those seen ``>= min_count`` times; raw
        strings instead of token lists raise ``TypeError``, a ``min_count`` that is not a positive int
        ``ValueError``."""
        positive_int("min_count", min_count)
        if isinstance(sentences, str):
            raise TypeError("sentences must be lists of tokens; call tokenize(text) first")
        counter: Counter[str] = Counter()
        for sentence in sentences:
            if isinstance(sentence, str):
                raise TypeError(f"each sentence must be a list of tokens, got the string {sentence[:30]!r}")
            counter.update(sentence)
        kept = sorted((w for w, c in counter.items() if c >= min_count), key=lambda w: (-counter[w], w))
        dropped = sum(c for w, c in counter.items() if c < min_count)
        return cls(kept, [dropped] + [counter[w] for w in kept], unk=unk)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: object) -> bool:
        return word in self.stoi and word != self.unk

    def __repr__(self) -> str:
        shown = ", ".join(self.itos[1:6])
        return f"Vocabulary({len(self)} ids: {self.unk}, {shown}{', ...' if len(self) > 6 else ''})"

    def id(self, word: str) -> int:
        """The id of ``word``, 0 (``<unk>``) when it is not in the vocabulary."""
        return self.stoi.get(word, 0)

    def encode(self, tokens: Sequence[str], drop_unknown: bool = False) -> torch.Tensor:
        """Ids of ``tokens`` as a LongTensor ``(L,)``; unknown words become 0, or are left out. A raw string
        raises ``TypeError``."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens; call tokenize(text) first")
        ids = [self.stoi.get(t, 0) for t in tokens]
        if drop_unknown:
            ids = [i for i in ids if i != 0]
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Words of ``ids`` (a 1-D tensor or a list of ints); an id outside ``[0, V)`` raises ``ValueError``."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"ids must lie in [0, {len(self)}), got {bad[0]}")
        return [self.itos[i] for i in ids]


def _datapath(name: str) -> str:
    from gensim.test.utils import datapath  # gensim ships these files with its tests

    return datapath(name)


def load_lee_corpus() -> list[list[str]]:
    """gensim's Lee background corpus: 300 news documents (one per line), each tokenised with :func:`tokenize`
    (59,576 tokens in all; ``tests/test_embedding.py`` checks the count)."""
    with open(_datapath("lee_background.cor"), encoding="utf-8") as f:
        return [tokens for line in f if (tokens := tokenize(line))]


WORD_PAIR_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def load_word_pairs(name: str) -> list[tuple[str, str, float]]:
    """Human similarity judgements ``(word1, word2, score)``: ``"wordsim353"`` (353 pairs, relatedness,
    0 to 10) or ``"simlex999"`` (999 pairs, strict similarity, 0 to 10). Words are lower-cased. Another name
    raises ``ValueError``."""
    if name not in WORD_PAIR_FILES:
        raise ValueError(f"name must be one of {sorted(WORD_PAIR_FILES)}, got {name!r}")
    pairs = []
    with open(_datapath(WORD_PAIR_FILES[name]), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            a, b, score = line.rstrip("\n").split("\t")[:3]
            pairs.append((a.lower(), b.lower(), float(score)))
    return pairs


def encode_words(texts: Sequence[str], vocab: Sequence[str], max_len: int | None = None,
                 what: str = "the") -> tuple[torch.Tensor, torch.Tensor]:
    """Texts to padded ids in a small fixed vocabulary (``vocab[0]`` pads): ``(N, T)`` ids and ``(N,)`` lengths.

    Every text needs at least one word and only words of ``vocab`` (not the padding token), else ``ValueError``
    naming the unknown words (``what`` names the vocabulary in that message); ``max_len`` fixes ``T`` (default:
    the longest text). A single string instead of a list raises ``TypeError``.
    """
    if isinstance(texts, str):
        raise TypeError("encode expects a list of texts, got a single string (wrap it in a list)")
    word_to_id = {word: i for i, word in enumerate(vocab)}
    rows = []
    for text in texts:
        words = text.lower().split()
        unknown = [w for w in words if w not in word_to_id or w == vocab[0]]
        if unknown or not words:
            raise ValueError(f"every text needs words from the {what} vocabulary {tuple(vocab[1:])}; "
                             f"got unknown words {unknown} in {text!r}")
        rows.append([word_to_id[w] for w in words])
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    width = max_len if max_len is not None else int(lengths.max()) if rows else 0
    if rows and int(lengths.max()) > width:
        raise ValueError(f"a text has {int(lengths.max())} words, more than max_len={width}")
    ids = torch.zeros(len(rows), width, dtype=torch.long)  # (N, T), 0 = padding
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids, lengths
