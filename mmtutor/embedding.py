r"""Chapter 1: word embeddings, $\vec w = E(w)$, and the pieces of skip-gram with negative sampling.

An embedding is a matrix ``E`` of shape ``(V, D)``: word ``w`` (an id in ``[0, V)``) gets the row ``E[w]``.
Multiplying the one-hot vector of ``w`` by ``E`` gives the same row, at ``V`` times the cost.

Skip-gram with negative sampling (SGNS, Mikolov et al. 2013) learns ``E`` from text: a word should
predict the words around it (positive pairs) and not ``k`` words drawn from a noise distribution.
The pieces, each a small pure function:

* ``context_pairs``: the ``(centre, context)`` pairs within a window;
* ``noise_distribution`` and ``unigram_table``: $P_n(w) \propto \mathrm{count}(w)^{3/4}$ and a fast sampler;
* ``keep_probability`` and ``subsample``: dropping frequent words at random;
* ``sgns_loss``: $-\log\sigma(\vec u_o\cdot\vec v_c) - \sum_k \log\sigma(-\vec u_k\cdot\vec v_c)$;
* ``SkipGram``: the two tables (``E`` for centre words, ``U`` for context words) that hold the parameters.

Training and evaluation (batches, nearest neighbours, analogies, Spearman) live in ``mmtutor.word2vec``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import float_tensor, id_tensor, number, one_of, positive_int, shapes


def _counts(counts: torch.Tensor) -> torch.Tensor:
    """Word counts ``(V,)``: non-negative, with a positive total."""
    if not isinstance(counts, torch.Tensor) or counts.ndim != 1 or not len(counts):
        raise ValueError(f"counts must be a non-empty 1-D tensor, got {getattr(counts, 'shape', counts)!r}")
    if (counts < 0).any() or not counts.sum() > 0:
        raise ValueError(f"counts must be >= 0 with a positive total, got min {counts.min().item()}, "
                         f"total {counts.sum().item()}")
    return counts


def one_hot_lookup(ids: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    r"""$E(w) = \mathrm{onehot}(w)^\top E$: ids ``(...)`` and ``E (V, D)`` give ``(..., D)``.

    The definition, at ``O(V D)`` per word; ``E[ids]`` gives the same rows at ``O(D)``. A table that is not a
    float ``(V, D)`` tensor, or ids as in :class:`Embedding`, raise ``TypeError`` / ``ValueError``.
    """
    id_tensor("ids", ids, len(float_tensor("E", E, "(V, D)")))
    x = F.one_hot(ids, num_classes=E.shape[0]).to(E.dtype)  # (..., V)
    return x @ E  # (..., D)


class Embedding(nn.Module):
    r"""The original write-up's $\vec w = E(w)$: a table ``weight (vocab_size, embed_size)`` looked up by id.

    ``forward(ids)`` maps a LongTensor of any shape ``(...)`` to ``(..., embed_size)``, the rows
    ``weight[ids]``, which equals ``one_hot(ids) @ weight``. Ids outside ``[0, vocab_size)`` or of a
    non-integer dtype raise ``ValueError`` naming the value and the vocabulary size (a non-integer dtype raises
    :class:`~mmtutor._checks.DtypeError`, which is also a ``TypeError``); sizes that are not positive ints
    raise ``ValueError``.
    """

    def __init__(self, vocab_size: int, embed_size: int, _weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.embed_size = positive_int("embed_size", embed_size)
        # N(0, 1), as nn.Embedding; `_weight` (as in nn.Embedding) skips that draw: from_pretrained uses it
        self.weight = nn.Parameter(torch.randn(vocab_size, embed_size) if _weight is None else _weight)

    @classmethod
    def from_pretrained(cls, table: torch.Tensor, freeze: bool = True) -> Embedding:
        """An ``Embedding`` holding a copy of ``table (V, D)`` (frozen unless ``freeze=False``); anything but a
        float ``(V, D)`` tensor raises ``TypeError`` / ``ValueError``."""
        float_tensor("table", table, "(V, D)")
        module = cls(*table.shape, _weight=table.detach().clone())  # a copy: no random table drawn first
        module.weight.requires_grad_(not freeze)
        return module

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        id_tensor("ids", ids, self.vocab_size)
        return F.embedding(ids, self.weight)  # (..., D): a row lookup, gradients go to the rows used

    def extra_repr(self) -> str:
        return f"{self.vocab_size}, {self.embed_size}"


def context_pairs(sentences: Sequence[torch.Tensor], window: int,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``(centre, context)`` pairs with ``0 < |i - j| <= window`` inside each sentence.

    With a ``generator``, each centre word draws its own window ``b ~ U{1..window}`` first, as word2vec
    does (near words count more: a word at distance ``d`` is kept with probability ``(window - d + 1) / window``).
    Pairs never cross sentence boundaries. Returns two LongTensors ``(P,)``. A ``window`` that is not a
    positive int, or a sentence that is not a 1-D tensor of integer ids, raises ``ValueError``.
    """
    positive_int("window", window)
    if isinstance(sentences, torch.Tensor) and sentences.ndim == 1:
        sentences = [sentences]
    sentences = [s for s in sentences if len(s)]
    if not sentences:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty.clone()
    if any(not isinstance(s, torch.Tensor) or s.ndim != 1 or s.is_floating_point() for s in sentences):
        raise ValueError("each sentence must be a 1-D tensor of integer ids (Vocabulary.encode), got "
                         + ", ".join(sorted({type(s).__name__ if not isinstance(s, torch.Tensor)
                                             else f"{s.dtype} of shape {tuple(s.shape)}" for s in sentences})))
    w = torch.cat(sentences)  # (N,) one stream of ids
    sid = torch.repeat_interleave(torch.arange(len(sentences)), torch.tensor([len(s) for s in sentences]))
    if generator is None:
        b = torch.full((len(w),), window)  # the full window for every centre
    else:
        b = torch.randint(1, window + 1, (len(w),), generator=generator)  # (N,) per-centre window
    centres, contexts = [], []
    for d in range(1, window + 1):
        same = sid[d:] == sid[:-d]  # (N - d,) positions i, i + d in the same sentence
        right = same & (b[:-d] >= d)  # centre i, context i + d
        left = same & (b[d:] >= d)  # centre i + d, context i
        centres += [w[:-d][right], w[d:][left]]
        contexts += [w[d:][right], w[:-d][left]]
    return torch.cat(centres), torch.cat(contexts)


def noise_distribution(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    r"""$P_n(w) = \mathrm{count}(w)^{\alpha} / \sum_{w'} \mathrm{count}(w')^{\alpha}$ with $\alpha = 3/4$.

    The power flattens the unigram distribution: rare words are drawn as negatives more often
    than their frequency alone would say. Words with count 0 are never drawn (for any ``power >= 0``).
    ``counts (V,)`` must be >= 0 with a positive total and ``power`` a number >= 0, else ``ValueError``.
    """
    _counts(counts)
    number("power", power, 0.0)
    p = torch.where(counts > 0, counts.double() ** power, 0.0)  # (V,); 0 ** 0 would be 1
    return (p / p.sum()).float()  # (V,)


def unigram_table(probs: torch.Tensor, size: int = 1_000_000) -> torch.Tensor:
    """word2vec's sampler: a table of ``size`` ids where id ``w`` fills about ``size * probs[w]`` cells.

    Drawing negatives is then ``table[randint(size)]``, much cheaper than ``torch.multinomial``.
    ``probs (V,)`` that are negative or sum to 0, or a ``size`` that is not a positive int, raise ``ValueError``.
    """
    if not isinstance(probs, torch.Tensor) or probs.ndim != 1 or (probs < 0).any() or not probs.sum() > 0:
        raise ValueError("probs must be a 1-D tensor of non-negative probabilities with a positive sum, got "
                         f"{probs if not isinstance(probs, torch.Tensor) or probs.numel() <= 5 else probs.shape}")
    positive_int("size", size)
    cells = torch.diff((probs.double().cumsum(0) / probs.double().sum() * size).round().long(),
                       prepend=torch.zeros(1, dtype=torch.long))  # (V,) cells per id, summing to size
    return torch.repeat_interleave(torch.arange(len(probs)), cells)  # (size,)


def keep_probability(counts: torch.Tensor, t: float = 1e-3) -> torch.Tensor:
    r"""Frequent-word subsampling, as in word2vec's C code and gensim: keep word ``w`` with probability

    $$p_{\mathrm{keep}}(w) = \min\Big(1, \big(\sqrt{f(w)/t} + 1\big)\, t / f(w)\Big)
                           = \min\Big(1, \sqrt{t/f(w)} + t/f(w)\Big)$$

    with $f(w) = \mathrm{count}(w) / \sum_{w'} \mathrm{count}(w')$, the word's share of the corpus.
    (Mikolov et al. 2013 write the discard probability as $1 - \sqrt{t/f(w)}$; the code adds $t/f(w)$,
    which keeps a little more.) A word loses occurrences once $f(w) > \frac{3 + \sqrt 5}{2}\, t \approx 2.6\, t$;
    "the" loses most of its occurrences, which say little. ``t = 0`` keeps everything. ``counts (V,)`` must be
    >= 0 with a positive total (unless ``t = 0``) and ``t`` a number >= 0, else ``ValueError``.
    """
    if not isinstance(counts, torch.Tensor) or counts.ndim != 1:
        raise ValueError(f"counts must be a 1-D tensor, got {getattr(counts, 'shape', counts)!r}")
    if number("t", t, 0.0) == 0:
        return torch.ones(len(counts))
    _counts(counts)
    f = counts.double() / counts.sum()
    keep = ((f / t).sqrt() + 1) * t / f  # inf where f == 0, clipped below
    return keep.clamp(max=1.0).float()  # (V,)


def subsample(sentences: Sequence[torch.Tensor], keep: torch.Tensor,
              generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Drop each token ``w`` independently with probability ``1 - keep[w]`` (``keep (V,)``, from ``keep_probability``).

    The uniform numbers are drawn on the CPU from ``generator``: the same tokens are kept on every device.
    ``keep`` that is not a float ``(V,)`` tensor, or a sentence that is not 1-D ids in ``[0, V)``, raises
    ``TypeError`` / ``ValueError``.
    """
    float_tensor("keep", keep, "(V,)")
    for s in sentences:
        id_tensor("each sentence", s, len(keep), "(L,)")
    kept = []
    for s in sentences:
        u = torch.rand(len(s), generator=generator)  # (L,) on the CPU
        kept.append(s[u.to(s.device) < keep.to(s.device)[s]])
    return kept


def sgns_loss(v: torch.Tensor, u_pos: torch.Tensor, u_neg: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    r"""Negative-sampling loss of a batch of pairs:

    $$\ell = -\log\sigma(\vec u_o\cdot\vec v_c) - \sum_{k=1}^{K}\log\sigma(-\vec u_k\cdot\vec v_c)$$

    ``v (B, D)`` centre vectors, ``u_pos (B, D)`` their context vectors, ``u_neg (B, K, D)`` noise
    vectors. ``reduction``: ``"mean"`` or ``"sum"`` over the batch, or ``"none"`` for ``(B,)``. Shapes that do
    not fit together and an unknown reduction raise ``TypeError`` / ``ValueError``.
    """
    shapes("v (B, D), u_pos (B, D), u_neg (B, K, D)", v, u_pos, u_neg)
    one_of("reduction", reduction, ("mean", "sum", "none"))
    pos = (u_pos * v).sum(-1)  # (B,) score of the true context
    neg = (u_neg * v.unsqueeze(1)).sum(-1)  # (B, K) scores of the noise words
    loss = -F.logsigmoid(pos) - F.logsigmoid(-neg).sum(-1)  # (B,)
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()


class SkipGram(nn.Module):
    r"""Two tables: ``E`` (centre words, the embedding we keep) and ``U`` (context words).

    Initialised as word2vec does: ``E`` uniform in ``[-0.5/D, 0.5/D]``, ``U`` zero. ``forward(c, o, neg)``
    with centres ``c (B,)``, contexts ``o (B,)`` and negatives ``neg (B, K)`` returns the mean ``sgns_loss``;
    ids of the wrong shapes raise ``TypeError`` / ``ValueError``, ids out of range as in :class:`Embedding`.
    """

    def __init__(self, vocab_size: int, embed_size: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.E = Embedding(vocab_size, embed_size)
        self.U = Embedding(vocab_size, embed_size)
        with torch.no_grad():
            self.E.weight.copy_((torch.rand(vocab_size, embed_size, generator=generator) - 0.5) / embed_size)
            self.U.weight.zero_()

    def forward(self, c: torch.Tensor, o: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        shapes("c (B,), o (B,), neg (B, K)", c, o, neg)
        return sgns_loss(self.E(c), self.U(o), self.U(neg))  # (B, D), (B, D), (B, K, D) looked up

    @property
    def vectors(self) -> torch.Tensor:
        """The learned word vectors: ``E``'s table ``(V, D)``, detached."""
        return self.E.weight.detach()
