r"""Chapter 1, second half: training skip-gram with negative sampling and judging the vectors honestly.

* ``SGNSConfig``, ``sgns_batches``, ``train_sgns``: the pieces of ``mmtutor.embedding`` put together,
  trained with the shared ``mmtutor.train`` loop;
* ``most_similar``, ``analogy``: cosine nearest neighbours and $\vec b - \vec a + \vec c$ arithmetic;
* ``spearman``, ``evaluate_word_pairs``: rank correlation with human similarity judgements, with the
  share of pairs the vocabulary cannot answer (out of vocabulary) reported, never hidden.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._checks import float_tensor, id_tensor, positive_int, shapes
from .embedding import SkipGram, context_pairs, keep_probability, noise_distribution, subsample, unigram_table
from .train import History, train


@dataclass(frozen=True)
class SGNSConfig:
    """Skip-gram's settings (the defaults are gensim's and word2vec's, but for ``epochs`` and ``lr``)."""

    embed_size: int = 50  # D, the length of a word vector
    window: int = 5  # context words on each side (each centre draws its own window in 1..window)
    negatives: int = 5  # K noise words per positive pair
    epochs: int = 20  # passes over the corpus (a small corpus needs many)
    subsample: float = 1e-3  # t of frequent-word subsampling; 0 turns it off
    noise_power: float = 0.75  # alpha of the noise distribution count^alpha
    batch_size: int = 4096  # pairs per optimiser step
    lr: float = 0.01  # Adam's step size
    seed: int = 0  # initial vectors, subsampling, windows, shuffling and negatives all come from it


def sgns_batches(sentences: Sequence[torch.Tensor], vocab_size: int,
                 config: SGNSConfig) -> Callable[[int], Iterator[tuple[torch.Tensor, ...]]]:
    """A function ``epoch -> batches`` of ``(c (B,), o (B,), neg (B, K))`` for ``mmtutor.train``.

    Each epoch subsamples the corpus afresh, draws new windows, shuffles the pairs and draws new
    negatives, all from a generator seeded by ``(config.seed, epoch)``: repeatable, and on the CPU,
    so every device sees the same batches. Noise and subsampling use the counts of the ids in
    ``sentences`` (an id that never occurs, such as a dropped ``<unk>``, is never drawn). Sentences that are not
    1-D ids in ``[0, vocab_size)``, or hold no word at all, raise ``TypeError`` / ``ValueError``.
    """
    V = positive_int("vocab_size", vocab_size)
    for s in sentences:
        id_tensor("each sentence", s, V, "(L,)")
    counts = torch.bincount(torch.cat([*sentences, torch.zeros(0, dtype=torch.long)]), minlength=V)  # (V,)
    if counts.sum() == 0:
        raise ValueError("the sentences hold no words")
    keep = keep_probability(counts, config.subsample)
    table = unigram_table(noise_distribution(counts, config.noise_power))
    B, K = config.batch_size, config.negatives

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        g = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 1)
        c, o = context_pairs(subsample(sentences, keep, g), config.window, g)  # (P,), (P,)
        order = torch.randperm(len(c), generator=g)
        c, o = c[order], o[order]
        for start in range(0, len(c), B):
            n = min(B, len(c) - start)
            neg = table[torch.randint(len(table), (n, K), generator=g)]  # (n, K) drawn from P_n
            yield c[start:start + n], o[start:start + n], neg

    return batches


def _sgns_step_loss(model: SkipGram, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    c, o, neg = batch
    return model(c, o, neg)


def train_sgns(sentences: Sequence[torch.Tensor], vocab_size: int, config: SGNSConfig | None = None, *,
               device: torch.device | str | None = None, desc: str = "skip-gram",
               progress: bool | None = None, verbose: bool = True) -> tuple[SkipGram, History]:
    """Train a ``SkipGram`` on ``sentences`` (LongTensors of ids) with Adam; returns ``(model, history)``.

    The initial weights are drawn on the CPU from ``config.seed``, then moved to ``device``. Bad sentences raise
    as in :func:`sgns_batches`.
    """
    config = config or SGNSConfig()
    batches = sgns_batches(sentences, vocab_size, config)
    model = SkipGram(vocab_size, config.embed_size, torch.Generator().manual_seed(config.seed)).to(device)
    history = train(model, _sgns_step_loss, batches, epochs=config.epochs, lr=config.lr, device=device,
                    desc=desc, progress=progress, verbose=verbose)
    return model, history


def _index(vocab: Mapping[str, int] | Sequence[str]) -> Mapping[str, int]:
    if isinstance(vocab, Mapping):
        return vocab
    return {w: i for i, w in enumerate(vocab)}


def most_similar(E: torch.Tensor, vocab: Sequence[str], query: str | torch.Tensor, k: int = 10,
                 exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
    """The ``k`` words whose rows of ``E (V, D)`` have the highest cosine with ``query``.

    ``query`` is a word of ``vocab`` (itself excluded) or a vector ``(D,)``. ``vocab[i]`` names row ``i``.
    A ``vocab`` that is a mapping or of the wrong length, an unknown word (``KeyError``), a query vector of the
    wrong size and ``k`` outside ``[1, V]`` raise.
    """
    float_tensor("E", E, "(V, D)")
    if isinstance(vocab, Mapping | str):
        raise TypeError("vocab must be the list of words in row order (e.g. Vocabulary.itos), "
                        f"got {type(vocab).__name__}")
    if len(vocab) != E.shape[0]:
        raise ValueError(f"vocab has {len(vocab)} words for a table of {E.shape[0]} rows")
    stoi = _index(vocab)
    if isinstance(query, str):
        if query not in stoi:
            raise KeyError(f"{query!r} is not in the vocabulary")
        exclude = [*exclude, query]
        q = E[stoi[query]]
    else:
        q = float_tensor("the query vector", query, "(D,)", D=E.shape[1])
    if not 1 <= k <= E.shape[0]:
        raise ValueError(f"k must lie in [1, {E.shape[0]}], got {k}")
    return _nearest(F.normalize(E.float(), dim=1), vocab, stoi, q, k, exclude)


def _nearest(unit: torch.Tensor, vocab: Sequence[str], stoi: Mapping[str, int], q: torch.Tensor, k: int,
             exclude: Sequence[str]) -> list[tuple[str, float]]:
    """The ``k`` rows of the unit-length table ``unit (V, D)`` nearest to ``q (D,)`` by cosine, ``exclude`` left out."""
    scores = unit @ F.normalize(q.float().to(unit.device), dim=0)  # (V,) cosines
    banned = [stoi[w] for w in exclude if w in stoi]
    scores[banned] = -math.inf
    top = scores.topk(min(k, unit.shape[0] - len(set(banned))))
    return [(vocab[i], round(s, 4)) for s, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


def analogy(E: torch.Tensor, vocab: Sequence[str], a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
    r"""Answer "``a`` is to ``b`` as ``c`` is to ?" with the words nearest to $\hat b - \hat a + \hat c$
    (3CosAdd, on unit vectors), leaving out ``a``, ``b`` and ``c`` themselves: ``man, king, woman -> queen``.
    A word the vocabulary lacks raises ``KeyError``; ``vocab`` and ``k`` are checked as in :func:`most_similar`."""
    float_tensor("E", E, "(V, D)")
    stoi = _index(vocab)
    missing = [w for w in (a, b, c) if w not in stoi]
    if missing:
        raise KeyError(f"not in the vocabulary: {missing}")
    if isinstance(vocab, Mapping | str) or len(vocab) != E.shape[0] or not 1 <= k <= E.shape[0]:
        return most_similar(E, vocab, E[stoi[c]], k)  # raises the error most_similar raises for these
    unit = F.normalize(E.float(), dim=1)  # (V, D), computed once
    target = unit[stoi[b]] - unit[stoi[a]] + unit[stoi[c]]  # (D,)
    return _nearest(unit, vocab, stoi, target, k, (a, b, c))


def rank(x: torch.Tensor) -> torch.Tensor:
    r"""Ranks 1..n of a 1-D tensor, ties sharing their average rank (as ``scipy.stats.rankdata``).

    A value with $b$ values below it and $e$ equal to it (itself included) gets rank $b + (e + 1) / 2$;
    computed from the sorted distinct values, ``O(n log n)``. Anything but a 1-D tensor, or NaN, raises
    ``TypeError`` / ``ValueError``.
    """
    shapes("x (n,)", x)
    if x.is_floating_point() and x.isnan().any():
        raise ValueError("rank got NaN values, which have no rank")
    _, inverse, e = torch.unique(x.double(), sorted=True, return_inverse=True, return_counts=True)  # distinct values
    b = e.cumsum(0) - e  # (U,) values strictly below each distinct value
    return (b.double() + (e.double() + 1) / 2)[inverse]  # (n,) float64


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    r"""Spearman's $\rho$: the Pearson correlation of the ranks of ``x`` and ``y`` (1-D, same length >= 2,
    else ``TypeError`` / ``ValueError``)."""
    shapes("x (n,), y (n,)", x, y)
    if len(x) < 2:
        raise ValueError(f"spearman needs at least 2 pairs, got {len(x)}")
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = (rx.norm() * ry.norm()).item()
    return float("nan") if denom == 0 else (rx @ ry).item() / denom


@dataclass
class WordPairScore:
    """How a table ranks human-judged word pairs."""

    spearman: float  # rank correlation with the human scores, over the pairs in vocabulary
    n_pairs: int  # pairs the table could score
    oov_rate: float  # share of pairs with a word the vocabulary lacks (left out, not guessed)


def evaluate_word_pairs(E: torch.Tensor, vocab: Mapping[str, int] | Sequence[str],
                        pairs: Sequence[tuple[str, str, float]]) -> WordPairScore:
    """Spearman between human scores and cosine similarities of ``E``'s rows, over in-vocabulary pairs.

    ``vocab`` maps words to rows (a dict, a ``Vocabulary.stoi`` or a list of words in row order); a
    pair is out of vocabulary when either word is missing. An empty ``pairs``, or fewer than 2 pairs in the
    vocabulary, raise ``ValueError``.
    """
    float_tensor("E", E, "(V, D)")
    if not pairs:
        raise ValueError("pairs is empty")
    stoi = _index(vocab)
    known = [(stoi[a], stoi[b], s) for a, b, s in pairs if a in stoi and b in stoi]
    if len(known) < 2:
        raise ValueError(f"only {len(known)} of {len(pairs)} pairs are in the vocabulary; need 2")
    i, j, human = (torch.tensor(col) for col in zip(*known, strict=True))
    unit = F.normalize(E.detach().float().cpu(), dim=1)
    cos = (unit[i] * unit[j]).sum(1)  # (n,)
    return WordPairScore(spearman(cos, human.double()), len(known), 1 - len(known) / len(pairs))
