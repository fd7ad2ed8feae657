"""Real handwritten digits (scikit-learn's ``load_digits``) with captions written from templates.

``load_digits`` ships 1,797 grey 8 x 8 scans of digits written by 43 people (UCI "Optical
Recognition of Handwritten Digits"), with pixel values 0 to 16. Here they become float images in
[0, 1], split into train and test sets stratified by class, and each image gets a short caption
such as "a handwritten seven" made from a template and the digit's name.

``TEMPLATES`` are the captions seen in training. ``PROMPTS`` are the templates a zero-shot
classifier may use: the training ones plus a few with words training never used ("blurry",
"drawing"), whose word vectors stay at their random initial values; prompt ensembling averages them
out (chapter 7).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

from .._checks import number
from .text import encode_words

DIGIT_NAMES: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEMPLATES: tuple[str, ...] = (  # the captions of training images; {} is the digit's name
    "a handwritten {}",
    "a photo of the digit {}",
    "the number {}",
    "a scan of a handwritten digit {}",
    "an image of the number {}",
    "{}",
)
PROMPTS: tuple[str, ...] = TEMPLATES + (  # for zero-shot classification: two templates use unseen words
    "a blurry photo of the number {}",
    "a drawing of a {}",
)

PAD = "<pad>"
VOCAB: tuple[str, ...] = (PAD, *dict.fromkeys(
    word for template in PROMPTS for word in template.split() if word != "{}"), *DIGIT_NAMES)
WORD_TO_ID: dict[str, int] = {word: i for i, word in enumerate(VOCAB)}


def load_digit_images(test_fraction: float = 0.3, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 1,797 digits as ``(x_train, y_train, x_test, y_test)``.

    Images are float32 ``(N, 1, 8, 8)`` in [0, 1] (the 0..16 ink counts divided by 16); labels are
    int64 ``(N,)`` in 0..9. The split is stratified by class and fixed by ``seed``. A ``test_fraction`` outside
    (0, 1) raises ``ValueError``.
    """
    from sklearn.datasets import load_digits  # local: importing scikit-learn takes a moment
    from sklearn.model_selection import train_test_split

    number("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.long)  # (1797,)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed,
                                           stratify=data.target)
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def digit_labels(labels: torch.Tensor | Sequence[int]) -> list[int]:
    """``labels`` (a 1-D tensor or a sequence) as a list of ints, each a digit 0..9, else ``ValueError``."""
    values = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 9]
    if bad:
        raise ValueError(f"digit labels must be ints in 0..9, got {bad[:5]}")
    return values


def digit_captions(labels: torch.Tensor | Sequence[int], seed: int,
                   templates: Sequence[str] = TEMPLATES) -> list[str]:
    """One caption per label, each from a template drawn at random: ``7 -> "a handwritten seven"``. Labels outside
    0..9, or templates without a ``{}`` slot, raise ``ValueError``."""
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"templates must be a non-empty list of strings with a {{}} slot, got {templates!r}")
    rng = random.Random(seed)
    return [rng.choice(list(templates)).format(DIGIT_NAMES[v]) for v in digit_labels(labels)]


def encode_digit_texts(texts: Sequence[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit captions and prompts to padded word ids ``(N, T)`` (id 0 pads the end) and their lengths ``(N,)``
    (:func:`mmtutor.data.text.encode_words` with the digit vocabulary ``VOCAB``, which raises on unknown words)."""
    return encode_words(texts, VOCAB, max_len, "digit")
