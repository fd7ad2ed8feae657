"""Text for chapter 1: tokens, a vocabulary, real English from gensim and a generated corpus.

* ``tokenize``: lower-case words (letters and inner apostrophes), nothing else.
* ``Vocabulary``: id <-> word maps with a minimum count and an unknown token at id 0.
* ``load_lee_corpus``, ``load_word_pairs``: gensim's Lee background corpus (about 58,000 words of
  news) and the WordSim-353 / SimLex-999 human similarity judgements, read from the files gensim
  installs (``gensim.test.utils.datapath``); nothing is downloaded.
* ``make_kinds_corpus``: seeded sentences whose words come in known kinds (colours, shapes,
  animals, places, actions), so a learned embedding can be checked against a known answer.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from .scenes import COLORS, SHAPES, SIZES

UNK = "<unk>"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")

# The generated corpus: every word of a kind can stand in every slot of that kind, so words of one kind
# share their contexts exactly and only their kind decides where they occur.
WORD_KINDS: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLORS),  # the five colours of the scenes
    "shape": SHAPES,  # circle, square, triangle
    "animal": ("cat", "dog", "horse", "cow", "sheep", "goat"),
    "place": ("kitchen", "garden", "park", "forest", "beach", "field"),
    "action": ("sleeps", "eats", "plays", "hides", "waits", "sits"),
}
_TEMPLATES: tuple[str, ...] = (
    "a {size} {colour} {shape} is next to a {colour} {shape}",
    "the {colour} {shape} is {size}",
    "i drew a {colour} {shape} and a {size} {shape}",
    "the {animal} {action} in the {place}",
    "a {animal} {action} near the {place}",
    "my {animal} {action} all day",
    "we walked to the {place} with the {animal}",
    "the {animal} {action} next to a {colour} {shape}",
)


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and keep its words: runs of letters, with apostrophes inside (``don't``).

    Digits and punctuation are dropped: ``tokenize("The cat's 2 hats!") == ["the", "cat's", "hats"]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class Vocabulary:
    """Words <-> ids. Id 0 is the unknown token; the others are ordered by count (ties alphabetically).

    ``Vocabulary.build(sentences, min_count)`` keeps the words seen at least ``min_count`` times;
    every other word maps to ``<unk>``. ``counts[i]`` is how often word ``i`` occurs (for ``<unk>``: how
    many tokens were dropped), the statistic skip-gram's noise and subsampling are built from.
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
        """Count the tokens of ``sentences`` (lists of words) and keep those seen ``>= min_count`` times."""
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
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
        """Ids of ``tokens`` as a LongTensor ``(L,)``; unknown words become 0, or are left out."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens; call tokenize(text) first")
        ids = [self.stoi.get(t, 0) for t in tokens]
        if drop_unknown:
            ids = [i for i in ids if i != 0]
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Words of ``ids`` (a 1-D tensor or a list of ints)."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"ids must lie in [0, {len(self)}), got {bad[0]}")
        return [self.itos[i] for i in ids]


def _datapath(name: str) -> str:
    from gensim.test.utils import datapath  # gensim ships these files with its tests

    return datapath(name)


def load_lee_corpus() -> list[list[str]]:
    """gensim's Lee background corpus: 300 news documents (one per line), tokenised, about 58,000 words."""
    with open(_datapath("lee_background.cor"), encoding="utf-8") as f:
        return [tokens for line in f if (tokens := tokenize(line))]


WORD_PAIR_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def load_word_pairs(name: str) -> list[tuple[str, str, float]]:
    """Human similarity judgements ``(word1, word2, score)``: ``"wordsim353"`` (353 pairs, relatedness,
    0 to 10) or ``"simlex999"`` (999 pairs, strict similarity, 0 to 10). Words are lower-cased."""
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


def make_kinds_corpus(n_sentences: int = 2000, seed: int = 0) -> tuple[list[list[str]], dict[str, str]]:
    """Seeded sentences about coloured shapes, animals, places and what animals do.

    Returns ``(sentences, kind_of)``: the tokenised sentences and, for every word of a kind,
    its kind (``kind_of["cat"] == "animal"``). Function words ("the", "a", "in") have no kind.
    """
    if isinstance(n_sentences, bool) or not isinstance(n_sentences, int) or n_sentences < 1:
        raise ValueError(f"n_sentences must be an int >= 1, got {n_sentences!r}")
    rng = random.Random(seed)
    slots = {**WORD_KINDS, "size": tuple(SIZES)}
    sentences = []
    for _ in range(n_sentences):
        template = rng.choice(_TEMPLATES)
        words = [rng.choice(slots[w[1:-1]]) if w.startswith("{") else w for w in template.split()]
        sentences.append(words)
    kind_of = {word: kind for kind, words in WORD_KINDS.items() for word in words}
    return sentences, kind_of
