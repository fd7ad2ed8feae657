r"""Chapter 4, tokens: byte-level byte-pair encoding (BPE, Sennrich et al. 2016; GPT-2's byte-level form).

Text becomes UTF-8 bytes, ids 0-255, so every string has an encoding (no ``<unk>``). Training counts the
adjacent pairs of ids and replaces the most frequent pair by a new id, again and again, until the vocabulary
has the size asked for. Encoding applies the learned merges in the order they were learned.

* :func:`pair_counts`, :func:`merge`: one step of training, on one sequence of ids;
* :func:`apply_merges`: encode ids with a table of merges, lowest rank first (what GPT-2 and Llama do);
* :func:`bytes_to_unicode`: GPT-2's printable character for every byte, as in byte-level vocabulary files;
* :func:`split_words`: the GPT-2 pre-tokenisation (words, numbers, punctuation runs, spaces), so that no
  merge crosses a word boundary;
* :class:`BPETokenizer`: ``train(text, vocab_size)``, ``encode``, ``decode``, ``vocab_size``.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

from ._checks import positive_int

Pair = tuple[int, int]

# GPT-2's pattern (Radford et al. 2019), ``'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+``,
# written for Python's ``re``: a letter is a word character that is neither a digit nor "_". Every character
# falls in one of the alternatives, so the pieces always join back to the text.
GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte (``tokenizers``' ``ByteLevel`` writes tokens with it).

    The printable bytes ``!``-``~``, ``¡``-``¬``, ``®``-``ÿ`` stand for themselves; the other 68 (space, controls,
    ...) get ``chr(256)``, ``chr(257)``, ... in byte order, so a space is ``Ġ``. A byte-level vocabulary file
    (GPT-2, SmolLM2) spells its tokens in these characters.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    stand_in = {b: chr(b) for b in keep}
    for n, b in enumerate(b for b in range(256) if b not in stand_in):
        stand_in[b] = chr(256 + n)
    return dict(sorted(stand_in.items()))


def pair_counts(ids: Sequence[int], counts: Counter[Pair] | None = None, weight: int = 1) -> Counter[Pair]:
    r"""How often each adjacent pair ``(ids[t], ids[t+1])`` occurs, times ``weight``, added to ``counts``.

    $$c(a, b) = \#\{t : x_t = a,\ x_{t+1} = b\}$$
    """
    counts = Counter() if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] += weight
    return counts


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, left to right (``aaa`` -> ``(aa) a``)."""
    a, b = pair
    out, t = [], 0
    while t < len(ids):
        if t + 1 < len(ids) and ids[t] == a and ids[t + 1] == b:
            out.append(new_id)
            t += 2
        else:
            out.append(ids[t])
            t += 1
    return out


# id(merges) -> (merges, its length, {pair: rank}); holding ``merges`` keeps its id from being reused
_RANKS: dict[int, tuple[dict, int, dict[Pair, int]]] = {}


def _ranks(merges: dict[Pair, int]) -> dict[Pair, int]:
    cached = _RANKS.get(id(merges))
    if cached is None or cached[0] is not merges or cached[1] != len(merges):
        if len(_RANKS) >= 8:  # a few tables at most (chapter 4's, chapter 5's SmolLM2)
            _RANKS.pop(next(iter(_RANKS)))
        cached = (merges, len(merges), {pair: rank for rank, pair in enumerate(merges)})
        _RANKS[id(merges)] = cached
    return cached[2]


def apply_merges(ids: list[int], merges: dict[Pair, int]) -> list[int]:
    r"""Encode ``ids`` with a table of merges: repeatedly merge the adjacent pair of lowest rank.

    $$ (a, b)^\ast = \arg\min_{(x_t, x_{t+1})} \mathrm{rank}(x_t, x_{t+1}), \qquad
       x \leftarrow \mathrm{merge}(x, (a, b)^\ast, \mathrm{merges}[(a, b)^\ast]) $$

    until no adjacent pair is in the table. ``merges`` maps a pair of ids to the id it merges into; its
    insertion order is the rank (the first entry is merged first). The merged ids are read from the table,
    not assumed to be ``256 + rank``, so a pretrained tokenizer's table (GPT-2, SmolLM2) works as it is.
    The ranks are computed once per table and cached; change a table by building a new dict.

    Raises ``TypeError`` if ``ids`` is not a list/tuple of ints or ``merges`` is not a dict.
    """
    if not isinstance(merges, dict):
        raise TypeError(f"merges must be a dict {{(id, id): merged id}}, got {type(merges).__name__}")
    if not isinstance(ids, list | tuple) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise TypeError(f"ids must be a list of ints, got {type(ids).__name__}"
                        + ("" if not isinstance(ids, list | tuple) else " with non-int items"))
    ranks = _ranks(merges)
    ids = list(ids)
    inf = len(ranks)
    while len(ids) >= 2:
        best = min(pairwise(ids), key=lambda pair: ranks.get(pair, inf))
        if best not in ranks:
            break
        ids = merge(ids, best, merges[best])
    return ids


def split_words(text: str, pattern: str | None = GPT2_SPLIT) -> list[str]:
    """Cut ``text`` into pre-tokens with ``pattern`` (``None``: the whole text is one piece); they join back to it."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if pattern is None:
        return [text] if text else []
    return re.findall(pattern, text)


def learn_merges(word_counts: dict[bytes, int], n_merges: int) -> dict[Pair, int]:
    r"""``n_merges`` BPE merges (fewer if no pair is left) from pre-tokens (as UTF-8 bytes) and their counts.

    Each step merges the most frequent pair, counted over all pre-tokens weighted by their counts (ties: the
    smallest pair of ids), into the next id ``256, 257, ...``. Only the pre-tokens that contain the merged pair
    are re-counted, so a step costs far less than a pass over the text; ``tests/test_tokenizer.py`` checks
    the result against the plain recount-everything loop.
    """
    positive_int("n_merges", n_merges, minimum=0)
    words = [list(w) for w in word_counts]  # each pre-token as a list of ids
    weights = list(word_counts.values())
    counts: Counter[Pair] = Counter()
    where: dict[Pair, set[int]] = {}  # pair -> the pre-tokens that contain it
    for w, (ids, weight) in enumerate(zip(words, weights, strict=True)):
        pair_counts(ids, counts, weight)
        for pair in pairwise(ids):
            where.setdefault(pair, set()).add(w)
    # a heap of (-count, a, b): the top is the most frequent pair, ties to the smallest; entries whose count
    # has changed since they were pushed are stale and skipped
    heap = [(-c, a, b) for (a, b), c in counts.items()]
    heapq.heapify(heap)
    merges: dict[Pair, int] = {}
    for new_id in range(256, 256 + n_merges):
        while heap and counts.get((heap[0][1], heap[0][2]), 0) != -heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            break
        _, a, b = heapq.heappop(heap)
        best = (a, b)
        merges[best] = new_id
        touched: set[Pair] = set()
        for w in where.pop(best):
            old = words[w]
            pair_counts(old, counts, -weights[w])  # take the pre-token's old pairs out ...
            words[w] = new = merge(old, best, new_id)
            pair_counts(new, counts, weights[w])  # ... and put its new pairs in
            touched.update(pairwise(old))
            touched.update(pairwise(new))
            for pair in pairwise(new):
                where.setdefault(pair, set()).add(w)
        for pair in touched:
            if counts[pair] > 0:
                heapq.heappush(heap, (-counts[pair], *pair))
            else:
                del counts[pair]
    return merges


class BPETokenizer:
    r"""Byte-level BPE: ids 0-255 are the bytes, every further id is a learned merge of two earlier ids.

    ``BPETokenizer.train(text, vocab_size)`` learns ``vocab_size - 256`` merges on ``text`` (cut into GPT-2
    pre-tokens unless ``pattern=None``); ``encode(text) -> list[int]``; ``decode(ids) -> str``, so that
    ``decode(encode(s)) == s`` for every string. ``merges`` (pair -> id, in rank order) and ``vocab``
    (id -> bytes) are plain dicts.

    Raises ``ValueError`` for ``vocab_size < 256`` and ``TypeError`` for text that is not a ``str``.
    """

    def __init__(self, merges: dict[Pair, int] | None = None, pattern: str | None = GPT2_SPLIT) -> None:
        merges = {} if merges is None else dict(merges)
        self.merges: dict[Pair, int] = merges
        self.pattern = pattern
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}  # id -> the bytes it stands for
        for (a, b), new_id in merges.items():
            if a not in self.vocab or b not in self.vocab or new_id in self.vocab:
                raise ValueError(f"merge ({a}, {b}) -> {new_id} must join two known ids into a new one")
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        self._cache: dict[str, list[int]] = {}  # pre-token -> ids: news text repeats its words

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str | None = GPT2_SPLIT) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges on ``text`` (fewer if the text runs out of pairs)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the 256 byte values come first), got {vocab_size!r}")
        word_counts = Counter(piece.encode("utf-8") for piece in split_words(text, pattern))
        return cls(learn_merges(dict(word_counts), vocab_size - 256), pattern)

    @property
    def vocab_size(self) -> int:
        """How many ids there are: 256 bytes plus one per merge."""
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``: each pre-token's UTF-8 bytes, merged with :func:`apply_merges`."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        ids: list[int] = []
        for piece in split_words(text, self.pattern):
            cached = self._cache.get(piece)
            if cached is None:
                cached = apply_merges(list(piece.encode("utf-8")), self.merges)
                if len(self._cache) < 100_000:
                    self._cache[piece] = cached
            ids.extend(cached)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids`` (a list of ints or a 1-D tensor); bytes that are not valid UTF-8 become U+FFFD."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = list(ids)
        bad = [i for i in ids if not isinstance(i, int) or isinstance(i, bool) or i not in self.vocab]
        if bad:
            raise ValueError(f"ids must be ints in [0, {self.vocab_size}), got {bad[0]!r}")
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, i: int) -> bytes:
        """The bytes that id ``i`` stands for."""
        if i not in self.vocab:
            raise ValueError(f"id must lie in [0, {self.vocab_size}), got {i!r}")
        return self.vocab[i]

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)})"
