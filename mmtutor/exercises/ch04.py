r"""Chapter 4's exercises (language models): the references, hidden probes and typical wrong answers live here.

The notebook's check cells are one line each, ``ch04.check_<what>(...)``:

* exercise 1, :func:`check_merge_step` (warm-up, :func:`~mmtutor.exercises.check_function`):
  ``merge_step(ids, new_id)``, one step of BPE training, against the package's
  :func:`~mmtutor.tokenizer.learn_merges` on hidden lists full of ties;
* exercise 2, :func:`check_min_p` (a new sampler, then an experiment with it): ``min_p_filter(logits, min_p)``
  against ``transformers``' ``MinPLogitsWarper``, then the mean number of candidate bytes it keeps for the trained
  GPT after a space and after a lower-case letter, measured by the learner and recomputed by the check;
* exercise 3, :func:`check_trigram` (train and tune): an add-$k$ trigram, checked against
  :func:`~mmtutor.ngram.ngram_nll` on hidden inputs, its $k$ tuned on the validation bytes, its test bits per byte,
  and whether it beats the GPT;
* exercise 4, :func:`check_kv_cache_size` (predict a count): the numbers a KV cache holds, checked against a real
  :class:`~mmtutor.language_model.KVCache` filled by the model at check time.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from itertools import pairwise
from typing import Any

import torch

from mmtutor.exercises import check, check_function, check_properties, exercise
from mmtutor.language_model import GPT, GPTConfig, KVCache, top_p_filter
from mmtutor.ngram import bits_per_byte, ngram_nll
from mmtutor.tokenizer import learn_merges, merge

# --- Exercise 1: one step of BPE training -----------------------------------------------------------------------

TIE = ("on a tie you do not take the smallest pair (compare first ids, then second ids); the largest pair and "
       "the pair seen first (Counter.most_common) are not it")
FIRST_ONLY = "you replace only the first occurrence of the pair: replace every one, scanning left to right"
NO_OVERLAP_COUNT = "you count only pairs that do not overlap: [2, 2, 2] holds the pair (2, 2) twice, at 0 and 1"


def _reference_merge_step(ids: list[int], new_id: int) -> tuple[tuple[int, int], list[int]]:
    """The package's first merge of this one sequence, and the sequence with it applied."""
    (pair,) = learn_merges({bytes(ids): 1}, 1)
    return pair, merge(ids, pair, new_id)


def _tie_largest(ids: list[int], new_id: int) -> tuple[tuple[int, int], list[int]]:
    counts = Counter(pairwise(ids))
    best = max(counts, key=lambda p: (counts[p], p))
    return best, merge(ids, best, new_id)


def _tie_first_seen(ids: list[int], new_id: int) -> tuple[tuple[int, int], list[int]]:
    ((best, _),) = Counter(pairwise(ids)).most_common(1)
    return best, merge(ids, best, new_id)


def _first_only(ids: list[int], new_id: int) -> tuple[tuple[int, int], list[int]]:
    best, _ = _reference_merge_step(ids, new_id)
    t = next(t for t in range(len(ids) - 1) if (ids[t], ids[t + 1]) == best)
    return best, [*ids[:t], new_id, *ids[t + 2:]]


def _no_overlap(ids: list[int], new_id: int) -> tuple[tuple[int, int], list[int]]:
    counts = {pair: len(ids) - len(merge(ids, pair, -1)) for pair in Counter(pairwise(ids))}  # non-overlapping
    best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
    return best, merge(ids, best, new_id)


def _small_alphabet(generator: torch.Generator) -> tuple[list[int], int]:
    """A list of 2..16 ids from an alphabet of 2..4 (ties and runs such as 2, 2, 2 everywhere), a new id >= 256."""
    n = int(torch.randint(2, 17, (1,), generator=generator))
    alphabet = int(torch.randint(2, 5, (1,), generator=generator))
    new_id = int(torch.randint(256, 300, (1,), generator=generator))
    return torch.randint(0, alphabet, (n,), generator=generator).tolist(), new_id


@exercise(1, tests="one step of BPE training: count the adjacent pairs (overlapping ones too), take the most "
                   "frequent (ties: the smallest pair), replace it left to right (a warm-up: section 1 shows the "
                   "loop)",
          wrong_answers={"breaks ties towards the largest pair, or the first seen (Counter.most_common)": TIE,
                         "replaces only the first occurrence": FIRST_ONLY,
                         "counts only non-overlapping occurrences": NO_OVERLAP_COUNT})
def check_merge_step(merge_step: Any) -> None:
    r"""Exercise 1: ``merge_step(ids, new_id)`` returns ``((a, b), new_ids)``: the most frequent adjacent pair of
    ``ids`` (ties: the smallest) and ``ids`` with every occurrence of it replaced by ``new_id``. Checked against
    the package's training (one merge of the sequence) on 24 hidden lists over alphabets of 2 to 4 ids."""
    __tracebackhide__ = True
    check_function("Exercise 1", merge_step, _reference_merge_step, _small_alphabet, trials=24, atol=0, rtol=0,
                   mistakes=[(TIE, _tie_first_seen), (TIE, _tie_largest),
                             (NO_OVERLAP_COUNT, _no_overlap), (FIRST_ONLY, _first_only)],
                   hints=("count every adjacent pair (ids[t], ids[t + 1]), overlapping ones included",
                          "among the pairs with the highest count take the smallest: Python compares tuples "
                          "first id first, then second id",
                          "then build a new list left to right: where the pair starts at t, write new_id and "
                          "continue at t + 2; elsewhere copy ids[t]"))


# --- Exercise 2: min-p, a sampler filter ------------------------------------------------------------------------

MIN_P = 0.1
ON_LOGITS = "you compare logits with min_p times the largest logit: the rule is about probabilities (softmax first)"
ABSOLUTE = "you keep the tokens with probability >= min_p: the threshold is min_p times the LARGEST probability"
INVERTED = "you keep the tokens that should be dropped and drop the ones that should stay"
ZERO_NOT_INF = "the dropped tokens should get the logit -inf (probability 0), not 0"
RETURNS_PROBS = "return logits (the kept ones unchanged, the others -inf), not probabilities"
BATCH_MAX = "the threshold uses the largest probability of the whole batch: each row has its own largest"
CUMULATIVE = "that is top-p (a cumulative mass): min-p compares each token's own probability with the largest one"
SWAPPED = "your two numbers are swapped: the first is after a space, the second after a lower-case letter"
WRONG_MIN_P = f"measure with min_p = {MIN_P}, the value the task gives"


def _min_p_reference(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    from transformers.generation.logits_process import MinPLogitsWarper  # imported here: it is slow to import

    return MinPLogitsWarper(min_p)(None, logits)


def _batch_max(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.max(), -math.inf)  # the largest of the batch, not of each row


def _random_logits(generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """(B, V) logits of random sizes, from flat to peaked, and a min_p in [0.02, 0.5)."""
    B, V = int(torch.randint(1, 9, (1,), generator=generator)), int(torch.randint(5, 300, (1,), generator=generator))
    scale = float(torch.rand(1, generator=generator)) * 4 + 0.2
    min_p = round(float(torch.rand(1, generator=generator)) * 0.48 + 0.02, 3)
    return torch.randn(B, V, generator=generator) * scale, min_p


def _kept_counts(previous: torch.Tensor, keep: torch.Tensor) -> tuple[float, float]:
    n_kept = keep.sum(-1).double().cpu()  # (N,)
    previous = previous.cpu()
    letters = (previous >= ord("a")) & (previous <= ord("z"))
    return n_kept[previous == ord(" ")].mean().item(), n_kept[letters].mean().item()


@exercise(2, tests="writing a new sampler filter, min-p (keep the tokens whose probability is at least min_p times "
                   "the largest), then measuring with it how many candidate bytes the trained GPT keeps at the start "
                   "of a word and inside one",
          wrong_answers={"compares logits instead of probabilities": ON_LOGITS,
                         "uses min_p as an absolute threshold": ABSOLUTE, "inverts the mask": INVERTED,
                         "sets dropped logits to 0": ZERO_NOT_INF, "returns probabilities": RETURNS_PROBS,
                         "takes the largest probability over the whole batch": BATCH_MAX,
                         "applies top-p instead": CUMULATIVE, "swaps the two measurements": SWAPPED,
                         "measures with another min_p": WRONG_MIN_P})
def check_min_p(min_p_filter: Any, kept_after_space: Any, kept_after_letter: Any, logits: torch.Tensor,
               previous: torch.Tensor) -> None:
    r"""Exercise 2: ``min_p_filter(logits, min_p)`` for ``logits (B, V)`` sets to ``-inf`` the logits of the tokens
    with :math:`\pi_v < \text{min\_p} \cdot \max_u \pi_u` and leaves the others unchanged; checked against
    ``transformers``' ``MinPLogitsWarper`` on 6 hidden batches of random sizes and sharpness. Then
    ``kept_after_space`` and ``kept_after_letter``: the mean number of bytes the filter keeps at ``min_p = 0.1``
    over the rows of ``logits (N, V)`` (the GPT's next-byte logits over test text) whose ``previous (N,)`` byte is
    a space, or a lower-case letter; recomputed here with ``MinPLogitsWarper``. After a pass, top-p 0.9's counts
    are shown beside them."""
    __tracebackhide__ = True
    check_function("Exercise 2", min_p_filter, _min_p_reference, _random_logits, trials=6, atol=1e-6, rtol=1e-6,
                   mistakes=[(ON_LOGITS, lambda z, m: z.masked_fill(z < m * z.max(-1, keepdim=True).values, -math.inf)),
                             (ABSOLUTE, lambda z, m: z.masked_fill(z.softmax(-1) < m, -math.inf)),
                             (INVERTED, lambda z, m: z.masked_fill(~_min_p_reference(z, m).isinf(), -math.inf)),
                             (ZERO_NOT_INF, lambda z, m: z.masked_fill(_min_p_reference(z, m).isinf(), 0.0)),
                             (RETURNS_PROBS, lambda z, m: _min_p_reference(z, m).softmax(-1)),
                             (BATCH_MAX, _batch_max),
                             (CUMULATIVE, lambda z, m: top_p_filter(z, m))],
                   hints=("turn the logits into probabilities first (softmax over the last dimension)",
                          "the threshold of a row is min_p times that row's largest probability: keep the shape "
                          "(B, 1) so that it broadcasts against (B, V)",
                          "drop a token when its probability is below its row's threshold; masked_fill puts -inf "
                          "into the original logits at those places"))
    if kept_after_space is Ellipsis or kept_after_letter is Ellipsis:
        check("Exercise 2 (measurement)", ..., 0.0)
        return
    keep = ~_min_p_reference(logits.float(), MIN_P).isinf()  # (N, V)
    expected = _kept_counts(previous, keep)
    other_p = [_kept_counts(previous, ~_min_p_reference(logits.float(), p).isinf()) for p in (0.05, 0.2)]
    nucleus = _kept_counts(previous, ~top_p_filter(logits.float(), 0.9).isinf())
    check("Exercise 2 (measurement)", (kept_after_space, kept_after_letter), expected, atol=1e-3, rtol=1e-3,
          mistakes=[(SWAPPED, expected[::-1]), *((WRONG_MIN_P, o) for o in other_p)],
          hints=("count the kept (finite) logits of each row of your filtered logits: one number per row",
                 "average those counts over the rows whose previous byte is ord(' '), then over those whose "
                 "previous byte lies between ord('a') and ord('z')"),
          feedback=f"(Min-p keeps {expected[0] / expected[1]:.1f} times as many candidates after a space as "
                   f"inside a word; top-p 0.9 keeps {nucleus[0]:.1f} and {nucleus[1]:.1f}: both adapt to the "
                   "model's uncertainty, min-p by the height of the top token, top-p by the mass of the tail.)")


# --- Exercise 3: train a trigram, and tune it -------------------------------------------------------------------

TRAINED_ON_TRAIN = "that k is best on the training bytes (the smallest k always is there): tune on the validation bytes"
TUNED_ON_TEST = "that k is best on the test bytes: tune on the validation bytes, and use the test bytes once"
NATS_NOT_BITS = "this is in nats per byte: divide by ln 2 for bits"
WRONG_COUNT = "divide by the number of predicted bytes: a trigram predicts len(test_ids) - 2 of them"
VALID_NOT_TEST = "this is the validation text's bits per byte: report the test text's"
ALL_PAIRS = "c(a, b) counts only the pairs that a token follows in the training ids: leave out the last pair"
BIGRAM = "this scores with one token of context (a bigram): use the two ids before each token"
K_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
V_BYTES = 256


def _trigram_inputs(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Training and scored ids over a small vocabulary (3..6), random lengths, a random k."""
    V = int(torch.randint(3, 7, (1,), generator=generator))
    n_train = int(torch.randint(50, 300, (1,), generator=generator))
    n = int(torch.randint(10, 80, (1,), generator=generator))
    k = round(float(torch.rand(1, generator=generator)) * 0.9 + 0.05, 3)
    return (torch.randint(0, V, (n_train,), generator=generator), torch.randint(0, V, (n,), generator=generator),
            V, k)


def _trigram_reference(train_ids: torch.Tensor, ids: torch.Tensor, V: int, k: float) -> torch.Tensor:
    return torch.tensor(ngram_nll(train_ids, ids, V, 3, k))


def _bigram_as_trigram(train_ids: torch.Tensor, ids: torch.Tensor, V: int, k: float) -> torch.Tensor:
    return torch.tensor(ngram_nll(train_ids, ids[1:], V, 2, k))


def _all_pairs_context(train_ids: torch.Tensor, ids: torch.Tensor, V: int, k: float) -> torch.Tensor:
    """c(a, b) counted over every pair, including the last one (which no token follows)."""
    tr, x = train_ids.tolist(), ids.tolist()
    c_abw, c_ab = Counter(zip(tr, tr[1:], tr[2:], strict=False)), Counter(pairwise(tr))
    return torch.tensor(-sum(math.log((c_abw[(a, b, w)] + k) / (c_ab[(a, b)] + k * V))
                             for a, b, w in zip(x, x[1:], x[2:], strict=False)))


@functools.lru_cache(maxsize=1)
def _lee_bytes() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chapter's training, validation and test bytes (as the notebook splits them)."""
    from mmtutor.lm_tasks import load_lee_documents, split_documents

    texts = split_documents(load_lee_documents(), n_valid=30, n_test=30)
    return tuple(torch.tensor(list(t.encode())) for t in texts)


def _tuned_bpb() -> list[float]:
    """The expected test bits per byte (and its roundings), for the student-copy leak test."""
    train_ids, valid_ids, test_ids = _lee_bytes()
    k = min(K_GRID, key=lambda k: ngram_nll(train_ids, valid_ids, V_BYTES, 3, k))
    bpb = bits_per_byte(ngram_nll(train_ids, test_ids, V_BYTES, 3, k), len(test_ids) - 2)
    return [bpb, round(bpb, 3), round(bpb, 4)]


@exercise(3, tests="counting a model (an add-k trigram over bytes), tuning its smoothing on held-out text, and "
                   "comparing it with the trained GPT in bits per byte",
          wrong_answers={"counts c(a, b) over every pair, the last one too": ALL_PAIRS, "scores with a bigram": BIGRAM,
                         "tunes k on the training bytes": TRAINED_ON_TRAIN, "tunes k on the test bytes": TUNED_ON_TEST,
                         "reports nats, not bits": NATS_NOT_BITS, "divides by the wrong count": WRONG_COUNT,
                         "reports the validation bits per byte": VALID_NOT_TEST},
          answers=_tuned_bpb)
def check_trigram(trigram_nll: Any, trigram_k: Any, trigram_bpb: Any, trigram_beats_gpt: Any,
               data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], k_grid: Any, gpt_bpb: float) -> None:
    r"""Exercise 3: ``trigram_nll(train_ids, ids, V, k)``, the total nats of ``ids[2:]`` under
    :math:`p(w \mid a, b) = (c(a, b, w) + k) / (c(a, b) + kV)` counted on ``train_ids``, checked against
    :func:`mmtutor.ngram.ngram_nll` (``n = 3``) on 4 hidden inputs; then ``trigram_k`` (a $k$ of ``k_grid`` with
    the smallest validation loss), ``trigram_bpb`` (the test bits per byte with it) and ``trigram_beats_gpt``
    (whether it beats ``gpt_bpb``), all recomputed here from ``data = (train_ids, valid_ids, test_ids)``."""
    __tracebackhide__ = True
    fn = trigram_nll if not callable(trigram_nll) else lambda *a: torch.tensor(float(trigram_nll(*a)))
    check_function("Exercise 3 (trigram)", fn, _trigram_reference, _trigram_inputs, trials=4, atol=1e-6, rtol=1e-6,
                   mistakes=[(ALL_PAIRS, _all_pairs_context), (BIGRAM, _bigram_as_trigram)],
                   hints=("count every triple (a, b, w) of consecutive training ids, and every pair (a, b) that "
                          "starts one",
                          "for each position t >= 2 of ids, add -log((c(a, b, w) + k) / (c(a, b) + k V)) with a, b "
                          "the two ids before w"))
    parts = (("tuned k", trigram_k), ("test bits per byte", trigram_bpb), ("against the GPT", trigram_beats_gpt))
    if any(answer is Ellipsis for _, answer in parts):
        for part, answer in parts:
            if answer is Ellipsis:
                check(f"Exercise 3 ({part})", ..., 0.0)
        return
    train_ids, valid_ids, test_ids = data
    grid = {k: ngram_nll(train_ids, valid_ids, V_BYTES, 3, k) for k in k_grid}
    best_on = lambda ids: min(k_grid, key=lambda k: ngram_nll(train_ids, ids, V_BYTES, 3, k))  # noqa: E731
    check_properties("Exercise 3 (tuned k)", trigram_k,
                     [("it is one of the values of K_GRID", lambda k: any(k == g for g in k_grid)),
                      ("no k of K_GRID has a smaller validation loss", lambda k: grid[k] <= min(grid.values()))],
                     mistakes=[(TRAINED_ON_TRAIN, lambda k: k == best_on(train_ids) != best_on(valid_ids)),
                               (TUNED_ON_TEST, lambda k: k == best_on(test_ids) != best_on(valid_ids))],
                     hints=("score each k of K_GRID on the validation bytes with your trigram_nll",
                            "keep the k with the smallest validation negative log-likelihood"))
    best = min(grid, key=grid.get)
    nll_test = ngram_nll(train_ids, test_ids, V_BYTES, 3, best)
    bpb = bits_per_byte(nll_test, len(test_ids) - 2)
    check("Exercise 3 (test bits per byte)", trigram_bpb, bpb, atol=1e-4, rtol=1e-4,
          mistakes=[(NATS_NOT_BITS, bpb * math.log(2)), (WRONG_COUNT, bits_per_byte(nll_test, len(test_ids) - 1)),
                    (WRONG_COUNT, bits_per_byte(nll_test, len(test_ids))),
                    (VALID_NOT_TEST, bits_per_byte(grid[best], len(valid_ids) - 2))],
          hints=("bits per byte = total nats / (number of predicted bytes x ln 2)",))
    check("Exercise 3 (against the GPT)", trigram_beats_gpt, bpb < gpt_bpb,
          hints=("compare your test bits per byte with the GPT's in the table of section 3 (smaller is better)",),
          feedback=f"(The trigram: {bpb:.3f} bits per byte, the GPT {gpt_bpb:.3f}: exact counts of two bytes of "
                   f"context on {len(train_ids):,} bytes of training text make a strong model.)")


# --- Exercise 4: how much does the KV cache hold? ---------------------------------------------------------------

KEYS_ONLY = "you counted the keys only: the cache keeps a value vector beside every key"
ONE_LAYER = "you counted one layer: every layer keeps its own keys and values"
NO_BATCH = "you counted one sequence: every sequence of the batch has its own cache"
TIMES_HEADS = ("the heads split the D numbers of a position into h parts of d_k = D / h: do not multiply by the "
               "number of heads again")
BYTES = "that is bytes (4 per float32): give the number of numbers"
PARAMETERS = "the cache holds activations (keys and values of positions), not the model's parameters"
KV_BATCH, KV_POSITIONS = 4, 20
# the exercise's model: 3 layers and 3 heads, so that a wrong factor of L or h gives a different count
KV_CONFIG = GPTConfig(vocab_size=256, context_length=64, d_model=96, n_heads=3, n_layers=3)


def _kv_numbers(config: GPTConfig) -> int:
    """Fill a real cache: the model reads a (KV_BATCH, KV_POSITIONS) batch, the cache's tensors are counted."""
    torch.manual_seed(0)
    model = GPT(config).eval()
    cache = KVCache()
    with torch.no_grad():
        model(torch.zeros(KV_BATCH, KV_POSITIONS, dtype=torch.long), cache=cache)
    return sum(k.numel() + v.numel() for k, v in cache.layers)


@exercise(4, tests="predicting the size of the KV cache by hand: keys and values, per layer, per sequence, per "
                   "position, D numbers each",
          wrong_answers={"keys only": KEYS_ONLY, "one layer": ONE_LAYER, "one sequence": NO_BATCH,
                         "multiplies by the heads again": TIMES_HEADS, "counts bytes": BYTES,
                         "counts the parameters": PARAMETERS},
          answers=lambda: [_kv_numbers(KV_CONFIG)])
def check_kv_cache_size(kv_numbers: Any) -> None:
    r"""Exercise 4: ``kv_numbers``, how many numbers the KV cache of a GPT with 3 layers, 3 heads and
    ``d_model = 96`` holds after reading a batch of 4 sequences of 20 tokens, predicted by hand. The expected count
    is that of a real :class:`~mmtutor.language_model.KVCache` filled by that model at check time."""
    __tracebackhide__ = True
    config = KV_CONFIG
    if isinstance(kv_numbers, float) and kv_numbers.is_integer():
        kv_numbers = int(kv_numbers)
    if isinstance(kv_numbers, torch.Tensor) and kv_numbers.numel() == 1:
        kv_numbers = kv_numbers.item()
    right = _kv_numbers(config)
    L, h = config.n_layers, config.n_heads
    n_parameters = sum(p.numel() for p in GPT(config).parameters())
    check_properties("Exercise 4", kv_numbers,
                     [("it is a whole number", lambda n: isinstance(n, int) and not isinstance(n, bool)),
                      ("it is the number of numbers the cache holds", lambda n: n == right)],
                     mistakes=[(KEYS_ONLY, lambda n: n == right // 2), (ONE_LAYER, lambda n: n == right // L),
                               (NO_BATCH, lambda n: n == right // KV_BATCH), (TIMES_HEADS, lambda n: n == right * h),
                               (BYTES, lambda n: n == 4 * right), (PARAMETERS, lambda n: n == n_parameters)],
                     hints=("each attention layer keeps, for every sequence and every position read so far, one key "
                            "vector and one value vector",
                            "the heads of a position together hold D numbers of keys (h heads of d_k = D / h), and "
                            "as many of values",
                            "multiply: keys and values, layers, sequences, positions, D"),
                     feedback="(A real KVCache filled by the model at check time holds that many.)")
