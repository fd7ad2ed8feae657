"""Chapter 2, experiments: a task where word order matters, and gradients through time.

**The side question.** A caption names two things and a horizontal relation, "a small red circle
left of a large blue square"; the question names a colour, "red": *is the red thing on the left?*
The answer needs the order of the words: "a small blue circle left of a large red square" has the
same bag of words and the opposite answer. Every caption in the data comes with such a partner
(its ``hard_negative`` of kind ``"swap"`` or ``"colors"``, from ``mmtutor.data.scenes``), asked the
same questions, so any model that sees only the bag of words plus the question answers each pair
identically: exactly one of the two is right, and its accuracy is exactly 50%.

The split is by bag of words, so no held-out caption (nor its partner) is seen in training.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import float_tensor, id_tensor, instance, int_tensor, number, positive_int
from .attention import masked_mean, padding_mask
from .context import ContextEncoding
from .data.scenes import VOCAB, WORD_TO_ID, Caption, encode, hard_negative, make_scenes
from .train import evaluating, seeded_batches

__all__ = ["SideQuestions", "side_label", "bag_of_words", "side_questions", "SentenceClassifier",
           "side_loss", "accuracy", "shuffled_batches", "gradient_norms_per_step"]

HORIZONTAL = ("left of", "right of")


@dataclass
class SideQuestions:
    """Captions with a colour question and its answer (1 = that colour's thing is on the left); ``tensors()``
    gives ``(ids, lengths, query, label)``."""

    texts: list[str]   # the captions, one per question
    ids: Tensor        # (N, T) word ids, 0 pads
    lengths: Tensor    # (N,) words per caption
    query: Tensor      # (N,) word id of the asked colour
    label: Tensor      # (N,) float 1.0 if the asked colour is on the left, else 0.0

    def __len__(self) -> int:
        return len(self.texts)

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.ids, self.lengths, self.query, self.label


def side_label(caption: Caption, color: str) -> int:
    """1 if the thing of colour ``color`` is on the left in ``caption``, else 0.

    The subject is on the left exactly when the relation is "left of". A vertical relation, or a colour that is
    not exactly one of the caption's two, raises ``ValueError``.
    """
    if caption.relation not in HORIZONTAL:
        raise ValueError(f"the caption must use 'left of' or 'right of', got {caption.relation!r}")
    colors = (caption.subject.color, caption.obj.color)
    if colors[0] == colors[1] or color not in colors:
        raise ValueError(f"color must be exactly one of the caption's two colours {colors}, got {color!r}")
    return int((color == caption.subject.color) == (caption.relation == "left of"))


def bag_of_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` as a sorted multiset: all a bag-of-words model can know of it."""
    return tuple(sorted(text.split()))


def side_questions(n_scenes: int = 4000, seed: int = 0, test_fraction: float = 0.25
                   ) -> tuple[SideQuestions, SideQuestions]:
    """Train and held-out side questions from ``make_scenes(n_scenes, seed)`` of two-object scenes.

    Each usable caption (horizontal relation, two different colours) and its same-bag hard negative
    give four questions: both captions, each asked about both colours. Bags of words are split
    between train and test at random (seeded), so the two sets share no caption. An ``n_scenes`` that is
    not a positive int, or a ``test_fraction`` outside (0, 1), raises ``ValueError``.
    """
    positive_int("n_scenes", n_scenes)
    number("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True)
    rng = random.Random(seed)
    # Two objects per scene: the captions are the same kind, and three-object scenes are much
    # slower to place (rejection sampling), which the task does not need.
    scenes, captions = make_scenes(n_scenes, seed=seed, min_objects=2, max_objects=2)
    pairs = []
    for scene, caption in zip(scenes, captions, strict=True):
        if caption.relation not in HORIZONTAL or caption.subject.color == caption.obj.color:
            continue
        partner = hard_negative(caption, scene, rng.choice(["swap", "colors"]), rng)
        if partner is not None:
            assert bag_of_words(partner.text) == bag_of_words(caption.text)
            pairs.append((caption, partner))
    bags = sorted({bag_of_words(c.text) for c, _ in pairs})
    random.Random(seed + 1).shuffle(bags)
    test_bags = set(bags[: max(1, round(test_fraction * len(bags)))])
    split = {True: [], False: []}
    for caption, partner in pairs:
        split[bag_of_words(caption.text) in test_bags].append((caption, partner))
    return _questions(split[False]), _questions(split[True])


def _questions(pairs: list[tuple[Caption, Caption]]) -> SideQuestions:
    texts, query, label = [], [], []
    for caption, partner in pairs:
        for color in (caption.subject.color, caption.obj.color):
            for c in (caption, partner):
                texts.append(c.text)
                query.append(WORD_TO_ID[color])
                label.append(side_label(c, color))
    ids, lengths = encode(texts)
    return SideQuestions(texts, ids, lengths, torch.tensor(query), torch.tensor(label, dtype=torch.float32))


class SentenceClassifier(nn.Module):
    r"""Sentence vector $s$ (mean of word vectors, or the LSTM's last state), question word vector $q$,
    and a small MLP on $[s; q]$ giving one logit: ``forward(ids (B, T), lengths (B,), query (B,))``.

    ``encoder="mean"``: $s = \frac{1}{L} \sum_{t \le L} E(w_t)$, blind to order by construction.
    ``encoder="lstm"``: $s = h_L$ of ``ContextEncoding`` over $E(w_1), \dots, E(w_L)$.
    An unknown encoder, ids that are not ``(B, T)`` integer ids, lengths or a query of the wrong shape
    raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, encoder: str = "lstm", embed_size: int = 16, hidden_size: int = 32,
                 head_size: int = 64, vocab_size: int = len(VOCAB)) -> None:
        super().__init__()
        if encoder not in ("mean", "lstm"):
            raise ValueError(f"encoder must be 'mean' or 'lstm', got {encoder!r}")
        self.encoder = encoder
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.context = ContextEncoding(embed_size, hidden_size) if encoder == "lstm" else None
        sentence_size = hidden_size if encoder == "lstm" else embed_size
        self.head = nn.Sequential(nn.Linear(sentence_size + embed_size, head_size), nn.ReLU(),
                                  nn.Linear(head_size, 1))

    def sentence(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """The sentence vector ``(B, D)``."""
        B, T = id_tensor("ids", ids, self.embed.num_embeddings, "(B, T)").shape
        int_tensor("lengths", lengths, "(B,)", B=B, low=1, high=T)
        x = self.embed(ids)  # (B, T, E)
        if self.context is not None:
            _, (h_n, _) = self.context(x, lengths=lengths)
            return h_n[0]  # (B, H)
        return masked_mean(x, padding_mask(lengths.to(ids.device), T))  # (B, E)

    def forward(self, ids: Tensor, lengths: Tensor, query: Tensor) -> Tensor:
        s = self.sentence(ids, lengths)
        id_tensor("query", query, self.embed.num_embeddings, "(B,)", B=ids.shape[0])
        return self.head(torch.cat([s, self.embed(query)], dim=-1)).squeeze(-1)  # (B,)


def side_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """Binary cross-entropy of the logit against "the asked colour is on the left", for :func:`mmtutor.train`;
    the model checks the batch."""
    ids, lengths, query, label = batch
    return F.binary_cross_entropy_with_logits(model(ids, lengths, query), label)


def accuracy(model: nn.Module, data: SideQuestions, device: torch.device | str = "cpu") -> float:
    """Fraction of questions answered right (logit > 0 means "on the left"), in evaluation mode (the
    model's training mode is restored afterwards). ``data`` that is not :class:`SideQuestions` raises
    ``TypeError``."""
    instance("data", data, SideQuestions, "SideQuestions (from side_questions)")
    ids, lengths, query, label = (t.to(device) for t in data.tensors())
    with evaluating(model):
        return ((model(ids, lengths, query) > 0).float() == label).float().mean().item()


def shuffled_batches(data: SideQuestions, batch_size: int = 64, seed: int = 0
                     ) -> Callable[[int], list[tuple[Tensor, ...]]]:
    """``epoch -> batches`` of ``(ids, lengths, query, label)``, reshuffled each epoch
    (:func:`mmtutor.train.seeded_batches`). ``data`` that is not :class:`SideQuestions` raises ``TypeError``."""
    instance("data", data, SideQuestions, "SideQuestions (from side_questions)")
    return seeded_batches(data.tensors(), batch_size, seed)


def gradient_norms_per_step(layer: nn.Module, x: Tensor) -> Tensor:
    r"""$\lVert \partial (\sum_j h_{T,j}) / \partial x_t \rVert$ for every step $t$, as ``(T,)``.

    ``layer(x)`` must return ``(out (B, T, H), ...)``; the gradient of the last output with respect
    to each input step measures how much step $t$ can still influence (and be taught by) the end.
    The sentences of the batch are independent, so the norm is taken over the batch and input
    dimensions together: $\sqrt{\sum_b \lVert \partial (\sum_j h^{(b)}_{T,j}) / \partial x^{(b)}_t \rVert^2}$.
    ``x`` that is not a float ``(B, T, I)`` tensor raises ``TypeError`` / ``ValueError``.
    """
    float_tensor("x", x, "(B, T, I)")
    x = x.detach().clone().requires_grad_(True)
    out = layer(x)[0]  # (B, T, H)
    (grad,) = torch.autograd.grad(out[:, -1].sum(), x)  # (B, T, I)
    return grad.norm(dim=(0, 2))  # (T,)
