"""Chapter 3, experiments: the task where one phrase decides, and attention on chapter 2's order task.

* :func:`key_word_task`: a long list of things, all small but one; the answer is the colour of the
  large one. One phrase, anywhere in the sentence, decides: the case for attention pooling. It returns
  ``ids (N, T)`` padded with 0, ``lengths (N,)``, ``labels (N,)`` (an index into ``COLOR_NAMES``) and
  the texts; ``batches``, ``cross_entropy_loss`` and ``class_accuracy`` plug it into ``mmtutor.train``.
* :class:`TransformerSentenceClassifier`: chapter 2's side question ("is the red thing on the left?",
  :func:`mmtutor.context_tasks.side_questions`) answered with a Transformer sentence vector in place of
  the LSTM's, with the same question embedding and MLP head as chapter 2's ``SentenceClassifier``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .context_tasks import seeded_batches
from .data.scenes import COLORS, SHAPES, VOCAB, Thing, encode
from .transformer import EncoderConfig, TransformerEncoder

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)  # label i is the colour COLOR_NAMES[i]

Task = tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]


def key_word_task(n: int, seed: int, min_things: int = 4, max_things: int = 15) -> Task:
    """``n`` seeded lists of ``min_things..max_things`` things (distinct colour and shape), exactly one
    of them large: "a small red circle a small blue square a large green triangle ...".
    The label is the colour of the large thing."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    kinds = [(color, shape) for color in COLORS for shape in SHAPES]
    if not 1 <= min_things <= max_things <= len(kinds):
        raise ValueError(f"need 1 <= min_things <= max_things <= {len(kinds)}, got {min_things}, {max_things}")
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        chosen = rng.sample(kinds, rng.randint(min_things, max_things))
        key = rng.randrange(len(chosen))  # the large one sits anywhere
        texts.append(" ".join(Thing(shape, color, "large" if i == key else "small").text
                              for i, (color, shape) in enumerate(chosen)))
        labels.append(COLOR_NAMES.index(chosen[key][0]))
    ids, lengths = encode(texts)
    return ids, lengths, torch.tensor(labels, dtype=torch.long), texts


def batches(task: Task, batch_size: int = 64, seed: int = 0) -> Callable[[int], list]:
    """For :func:`mmtutor.train`: a function ``epoch -> list of (ids, lengths, labels)`` batches, shuffled
    with a generator seeded by ``seed + epoch`` (chapter 2's :func:`~mmtutor.context_tasks.seeded_batches`)."""
    if not isinstance(task, tuple) or len(task) != 4:
        raise TypeError(f"task must be the (ids, lengths, labels, texts) of key_word_task, got {type(task).__name__}")
    ids, lengths, labels, _ = task
    return seeded_batches((ids, lengths, labels), batch_size, seed)


def cross_entropy_loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    """The loss of one ``(ids, lengths, labels)`` batch: cross-entropy of ``model(ids, lengths)``."""
    ids, lengths, labels = batch
    return F.cross_entropy(model(ids, lengths), labels)


@torch.no_grad()
def class_accuracy(model: nn.Module, task: Task, device: torch.device | str | None = None) -> float:
    """Fraction of ``task`` the model answers right (evaluation mode, then back to training mode)."""
    ids, lengths, labels, _ = task
    was_training = model.training
    model.eval()
    predictions = model(ids.to(device), lengths.to(device)).argmax(-1).cpu()
    model.train(was_training)
    return (predictions == labels).float().mean().item()


class TransformerSentenceClassifier(nn.Module):
    """Chapter 2's side question with attention in place of recurrence:
    $\\vec s = \\mathrm{TransformerEncoder}(w_1 \\dots w_L)$, $\\vec q = E(\\text{colour})$,
    logit $= \\mathrm{MLP}([\\vec s; \\vec q])$ (the head of chapter 2's ``SentenceClassifier``).

    ``forward(ids (B, T), lengths (B,), query (B,))`` -> one logit per question ``(B,)``;
    ``encoder`` is the :class:`~mmtutor.transformer.TransformerEncoder`, whose table also embeds the query.
    """

    def __init__(self, config: EncoderConfig | None = None, head_size: int = 64) -> None:
        super().__init__()
        config = config if config is not None else EncoderConfig(len(VOCAB), max_len=16)
        self.encoder = TransformerEncoder(config)
        D = config.d_model
        self.head = nn.Sequential(nn.Linear(2 * D, head_size), nn.ReLU(), nn.Linear(head_size, 1))

    def sentence(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The sentence vector ``(B, d_model)``."""
        return self.encoder(ids, lengths)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        if not isinstance(query, torch.Tensor) or tuple(query.shape) != (ids.shape[0],):
            raise ValueError(f"query must be a tensor of shape ({ids.shape[0]},), got "
                             f"{tuple(getattr(query, 'shape', ())) or type(query).__name__}")
        s = self.encoder(ids, lengths)  # (B, D)
        q = self.encoder.embed(query)  # (B, D)
        return self.head(torch.cat([s, q], dim=-1)).squeeze(-1)  # (B,)
