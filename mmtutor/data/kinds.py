"""A generated corpus for chapter 1 whose words come in known kinds (colours, shapes, animals, places,
actions), so a learned embedding can be checked against a known answer.

* ``WORD_KINDS``: the words of each kind; the colours, shapes and sizes are those of the scenes
  (:mod:`mmtutor.data.scenes`);
* ``make_kinds_corpus``: seeded sentences from templates whose slots each take any word of one kind.
"""

from __future__ import annotations

import random

from .._checks import positive_int
from .scenes import COLORS, SHAPES, SIZES

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


def make_kinds_corpus(n_sentences: int = 2000, seed: int = 0) -> tuple[list[list[str]], dict[str, str]]:
    """Seeded sentences about coloured shapes, animals, places and what animals do.

    Returns ``(sentences, kind_of)``: the tokenised sentences and, for every word of a kind,
    its kind (``kind_of["cat"] == "animal"``). Function words ("the", "a", "in") have no kind. An
    ``n_sentences`` that is not a positive int raises ``ValueError``.
    """
    positive_int("n_sentences", n_sentences)
    rng = random.Random(seed)
    slots = {**WORD_KINDS, "size": tuple(SIZES)}
    sentences = []
    for _ in range(n_sentences):
        template = rng.choice(_TEMPLATES)
        words = [rng.choice(slots[w[1:-1]]) if w.startswith("{") else w for w in template.split()]
        sentences.append(words)
    kind_of = {word: kind for kind, words in WORD_KINDS.items() for word in words}
    return sentences, kind_of
