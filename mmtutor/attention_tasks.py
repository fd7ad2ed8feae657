r"""Chapter 3, experiments: the task where one phrase decides, and the chapter's task models.

* :func:`key_word_task`: a long list of things, all small but one; the answer is the colour of the
  large one. One phrase, anywhere in the sentence, decides: the case for attention pooling. It returns
  ``ids (N, T)`` padded with 0, ``lengths (N,)``, ``labels (N,)`` (an index into ``COLOR_NAMES``) and
  the texts; ``batches``, ``cross_entropy_loss`` and ``class_accuracy`` plug it into ``mmtutor.train``.
* :class:`RecurrentClassifier`: embeddings + the chapter 2 LSTM (``ContextEncoding``) + a pooling
  (the original write-up's attention pooling, the mean of the states, or the last state) + a linear head.
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

from ._checks import id_tensor, int_tensor, one_of, positive_int
from .attention import SelfAttention, masked_mean, padding_mask
from .context import ContextEncoding
from .data.scenes import COLORS, SHAPES, VOCAB, Thing, encode
from .train import evaluating, seeded_batches
from .transformer import EncoderConfig, TransformerEncoder

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)  # label i is the colour COLOR_NAMES[i]

Task = tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]


def key_word_task(n: int, seed: int, min_things: int = 4, max_things: int = 15) -> Task:
    """``n`` seeded lists of ``min_things..max_things`` things (distinct colour and shape), exactly one
    of them large: "a small red circle a small blue square a large green triangle ...".
    The label is the colour of the large thing. A negative ``n`` or bounds outside ``1..15`` raise ``ValueError``."""
    positive_int("n", n, minimum=0)
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
    with a generator seeded by ``seed + epoch`` (:func:`mmtutor.train.seeded_batches`); anything but the tuple of
    :func:`key_word_task` raises ``TypeError``."""
    if not isinstance(task, tuple) or len(task) != 4:
        raise TypeError(f"task must be the (ids, lengths, labels, texts) of key_word_task, got {type(task).__name__}")
    ids, lengths, labels, _ = task
    return seeded_batches((ids, lengths, labels), batch_size, seed)


def cross_entropy_loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    """The loss of one ``(ids, lengths, labels)`` batch: cross-entropy of ``model(ids, lengths)``; the model
    checks the batch."""
    ids, lengths, labels = batch
    return F.cross_entropy(model(ids, lengths), labels)


def class_accuracy(model: nn.Module, task: Task, device: torch.device | str | None = None) -> float:
    """Fraction of ``task`` the model answers right (evaluation mode, then back to training mode:
    :func:`mmtutor.train.evaluating`); the model checks the inputs."""
    ids, lengths, labels, _ = task
    with evaluating(model):
        predictions = model(ids.to(device), lengths.to(device)).argmax(-1).cpu()
    return (predictions == labels).float().mean().item()


class RecurrentClassifier(nn.Module):
    r"""Word vectors, the chapter 2 LSTM, one pooling over time, a linear head.

    ``pooling``: ``"attention"`` ($s = \sum_t a_t h_t$, the original write-up's ``SelfAttention``), ``"mean"``
    ($s = \frac1T \sum_t h_t$ over the real tokens) or ``"last"`` ($s = h_T$, the final state).
    ``forward(ids (B, T), lengths (B,), return_weights=False)`` -> logits ``(B, n_classes)``
    (and the pooling weights ``(B, T)``: learned for attention, uniform for mean, one-hot for last).
    Sizes that are not positive ints, an unknown pooling, ids out of range and lengths of the wrong shape
    raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, vocab_size: int, n_classes: int, embed_size: int = 16, hidden_size: int = 32,
                 pooling: str = "attention") -> None:
        super().__init__()
        self.pooling = one_of("pooling", pooling, ("attention", "mean", "last"))
        self.vocab_size = positive_int("vocab_size", vocab_size)
        positive_int("n_classes", n_classes)
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.encoder = ContextEncoding(embed_size, hidden_size)
        self.attention = SelfAttention(hidden_size) if pooling == "attention" else None
        self.head = nn.Linear(hidden_size, n_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor,
                return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        B, T = id_tensor("ids", ids, self.vocab_size, "(B, T)").shape
        int_tensor("lengths", lengths, "(B,)", B=B)
        mask = padding_mask(lengths.to(ids.device), T)  # (B, T)
        h, (h_n, _) = self.encoder(self.embed(ids), lengths=lengths)  # (B, T, H), (1, B, H)
        if self.pooling == "attention":
            s, a = self.attention(h, mask, return_weights=True)  # (B, H), (B, T)
        elif self.pooling == "mean":
            s = masked_mean(h, mask)
            a = mask / mask.sum(1, keepdim=True)
        else:
            s = h_n[0]  # (B, H): the state at each sequence's last real token
            a = F.one_hot(lengths.to(ids.device) - 1, T).to(h.dtype)
        logits = self.head(s)  # (B, n_classes)
        return (logits, a) if return_weights else logits


class TransformerSentenceClassifier(nn.Module):
    r"""Chapter 2's side question with attention in place of recurrence:
    $\vec s = \mathrm{TransformerEncoder}(w_1 \dots w_L)$, $\vec q = E(\text{colour})$,
    logit $= \mathrm{MLP}([\vec s; \vec q])$ (the head of chapter 2's ``SentenceClassifier``).

    ``forward(ids (B, T), lengths (B,), query (B,))`` -> one logit per question ``(B,)``;
    ``encoder`` is the :class:`~mmtutor.transformer.TransformerEncoder`, whose table also embeds the query.
    A query that is not one id per sentence raises ``TypeError`` / ``ValueError``.
    """

    def __init__(self, config: EncoderConfig | None = None, head_size: int = 64) -> None:
        super().__init__()
        config = config if config is not None else EncoderConfig(len(VOCAB), max_len=16)
        self.encoder = TransformerEncoder(config)  # checks the config
        D = config.block.d_model
        self.head = nn.Sequential(nn.Linear(2 * D, head_size), nn.ReLU(), nn.Linear(head_size, 1))

    def sentence(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The sentence vector ``(B, d_model)``."""
        return self.encoder(ids, lengths)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        s = self.encoder(ids, lengths)  # (B, D); checks ids and lengths
        id_tensor("query", query, self.encoder.config.vocab_size, "(B,)", B=ids.shape[0])
        q = self.encoder.embed(query)  # (B, D)
        return self.head(torch.cat([s, q], dim=-1)).squeeze(-1)  # (B,)
