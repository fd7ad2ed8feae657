r"""Chapter 1's exercises: word embeddings and skip-gram with negative sampling.

* exercise 1, :func:`check_one_hot_lookup` (warm-up, :func:`~mmtutor.exercises.check_function`): ``lookup(ids, E)``,
  the embedding as a one-hot product, on hidden tables and id tensors of random shapes;
* exercise 2, :func:`check_log_sigmoid_limit` (experiment, :func:`~mmtutor.exercises.check_properties`): the score
  below which ``torch.log(torch.sigmoid(x))`` returns ``-inf`` in float32, checked on both sides of the answer;
* exercise 3, :func:`check_tied_skipgram` (ablate and train, :func:`~mmtutor.exercises.check_properties`): skip-gram
  with one table instead of two, trained on the generated corpus; its loss is probed on hidden ids, and the share of
  words whose nearest neighbour is of their own kind is recomputed from the learner's table;
* exercise 4, :func:`check_which_table_moves` (predict, :func:`~mmtutor.exercises.check_properties`): which of the two
  tables the first, and the second, optimiser step of a fresh ``SkipGram`` changes, run at check time;
* exercise 5, :func:`check_broken_analogy` (explore, :func:`~mmtutor.exercises.check_function`): the first analogy of
  a list that a table gets wrong, on the pretrained table and reorderings of the list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import torch

from mmtutor.data.kinds import make_kinds_corpus
from mmtutor.data.text import Vocabulary
from mmtutor.embedding import SkipGram, sgns_loss
from mmtutor.exercises import check_function, check_properties, exercise
from mmtutor.word2vec import SGNSConfig, analogy, most_similar, sgns_batches

# --- Exercise 1: the one-hot lookup -----------------------------------------------------------------------------

TRANSPOSED = "your one-hot matrix is transposed: it should have one row per id and one column per word"
FLATTENED = "the result lost the shape of ids: it should be ids.shape + (D,)"


def _ids_and_table(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A table (V, D) of random sizes and ids of a random shape with 1 to 3 dimensions."""
    V, D = (int(n) for n in torch.randint(2, 12, (2,), generator=generator))
    shape = tuple(int(n) for n in torch.randint(1, 5, (int(torch.randint(1, 4, (1,), generator=generator)),),
                                                generator=generator))
    ids = torch.randint(0, V, shape, generator=generator)
    return ids, torch.randn(V, D, generator=generator, dtype=torch.float64)


@exercise(1, tests="the embedding as its definition, a one-hot matrix times the table, for ids of any shape "
                   "(a warm-up: it retypes section 1's product with a comparison instead of F.one_hot)",
          wrong_answers={"flattens the ids": FLATTENED})
def check_one_hot_lookup(lookup: Any) -> None:
    r"""Exercise 1: ``lookup(ids, E)`` returns :math:`\mathrm{onehot}(ids) E`, shape ``ids.shape + (D,)``. Checked
    against ``E[ids]`` on five hidden tables of random sizes, with ids of one to three dimensions."""
    __tracebackhide__ = True
    check_function("Exercise 1", lookup, lambda ids, E: E[ids], _ids_and_table, trials=5, atol=1e-12, rtol=1e-12,
                   mistakes=[(FLATTENED, lambda ids, E: E[ids.reshape(-1)])],
                   hints=("compare ids with torch.arange(V): ids.unsqueeze(-1) == torch.arange(V) has shape "
                          "ids.shape + (V,)",
                          "cast that comparison to E's dtype and multiply it by E with @"))


# --- Exercise 2: where the naive log-sigmoid breaks --------------------------------------------------------------

STILL_FINITE = "the naive form is still finite a little below your score: it breaks further down"
EXP_UNDERFLOW = ("that is where e^x itself underflows in float32; but sigmoid(x) = 1 / (1 + e^(-x)) breaks as soon "
                 "as e^(-x) overflows")
NOT_A_SCORE = "the answer is a (negative) number: the score x below which the naive form gives -inf"


def _naive(x: float) -> float:
    return torch.log(torch.sigmoid(torch.tensor(x, dtype=torch.float32))).item()


@cache
def naive_log_sigmoid_limit() -> float:
    r"""The reference, measured: by bisection on float32 CPU tensors, the score :math:`x_0` such that
    ``torch.log(torch.sigmoid(x))`` is finite at :math:`x_0` and ``-inf`` just below it."""
    finite, broken = 0.0, -1000.0
    for _ in range(60):
        mid = (finite + broken) / 2
        finite, broken = (mid, broken) if math.isfinite(_naive(mid)) else (finite, mid)
    return finite


def _a_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float) and math.isfinite(x) and x < 0


@exercise(2, tests="finding by experiment (or by reasoning about float32's range) the score below which "
                   "log(sigmoid(x)) computed naively gives -inf, the reason the loss uses F.logsigmoid",
          wrong_answers={"a score where the naive form still works (such as -50)": STILL_FINITE,
                         "where e^x underflows (about -104) instead of where e^(-x) overflows": EXP_UNDERFLOW,
                         "not a negative number": NOT_A_SCORE},
          answers=lambda: [naive_log_sigmoid_limit()])
def check_log_sigmoid_limit(breaks_below: Any) -> None:
    r"""Exercise 2: ``breaks_below``, the score :math:`x_0` below which ``torch.log(torch.sigmoid(x))`` gives
    ``-inf`` for a float32 ``x`` (on the CPU). Checked on both sides, at check time: the naive form must be finite
    at 0.5 above the answer and ``-inf`` at 0.5 below it, so any answer within 0.5 of the limit passes."""
    __tracebackhide__ = True
    if isinstance(breaks_below, torch.Tensor) and breaks_below.numel() == 1:
        breaks_below = breaks_below.item()
    limit = naive_log_sigmoid_limit()
    check_properties(
        "Exercise 2", breaks_below,
        [("it is a negative number", _a_number),
         ("torch.log(torch.sigmoid(x)) is finite at x = your answer + 0.5", lambda x: math.isfinite(_naive(x + 0.5))),
         ("torch.log(torch.sigmoid(x)) is -inf at x = your answer - 0.5", lambda x: _naive(x - 0.5) == -math.inf)],
        mistakes=[(NOT_A_SCORE, lambda x: not _a_number(x)),
                  (EXP_UNDERFLOW, lambda x: abs(x + 103.97) < 1.5 and abs(x - limit) > 0.5),
                  (STILL_FINITE, lambda x: math.isfinite(_naive(x - 0.5)))],
        hints=("try it: evaluate torch.log(torch.sigmoid(torch.tensor(x))) for x = -50, -100, ... and narrow the "
               "interval where it turns into -inf (bisection)",
               "sigmoid(x) = 1 / (1 + exp(-x)): for a very negative x, exp(-x) is huge; what is the largest float32?",
               "the log of a float32 sigmoid becomes -inf once the sigmoid is exactly 0"),
        feedback=f"(Measured here: finite down to {limit:.2f}; e^(-x) passes float32's largest value, about 3.4e38 = "
                 f"e^{math.log(torch.finfo(torch.float32).max):.2f}, so 1 / (1 + e^(-x)) is 0 and its log -inf. "
                 "F.logsigmoid computes min(x, 0) - log(1 + e^(-|x|)), which never overflows.)")


# --- Exercise 3: one table instead of two ------------------------------------------------------------------------

TWO_TABLES = "your model has more than one table: the context vectors must be rows of the centre words' table"
PERCENT = "give the share as a fraction between 0 and 1, not a percentage"
NOT_TRAINED = "tied_model's loss is still at its starting value (1 + K) log 2: train it first"
KIND_SETTINGS = SGNSConfig(embed_size=16, window=2, negatives=5, epochs=5, subsample=0.0, batch_size=512, lr=0.01,
                           seed=0)  # section 3's settings


@cache
def _kinds() -> tuple[Vocabulary, dict[str, str], tuple[torch.Tensor, ...]]:
    sentences, kind_of = make_kinds_corpus(2000, seed=0)
    vocab = Vocabulary.build(sentences)
    return vocab, kind_of, tuple(vocab.encode(s) for s in sentences)


def _table(model: torch.nn.Module) -> torch.Tensor:
    (table,) = list(model.parameters())
    return table.detach().cpu()


def _one_table(cls: Any, V: int = 11, D: int = 4) -> bool:
    model = cls(V, D, torch.Generator().manual_seed(0))
    params = list(model.parameters())
    return len(params) == 1 and tuple(params[0].shape) == (V, D)


def _tied_loss(cls: Any) -> bool:
    g = torch.Generator().manual_seed(1)
    V, D, B, K = 13, 5, 7, 3
    model = cls(V, D, torch.Generator().manual_seed(0))
    (table,) = list(model.parameters())
    with torch.no_grad():
        table.copy_(torch.randn(V, D, generator=g))  # a table where every score matters
    c, o, neg = torch.randint(V, (B,), generator=g), torch.randint(V, (B,), generator=g), torch.randint(V, (B, K),
                                                                                                      generator=g)
    t = table.detach()
    return math.isclose(model(c, o, neg).item(), sgns_loss(t[c], t[o], t[neg]).item(), rel_tol=1e-5, abs_tol=1e-6)


def _same_kind_share(table: torch.Tensor) -> tuple[float, dict[str, str]]:
    vocab, kind_of, _ = _kinds()
    nearest = {w: most_similar(table, vocab.itos, w, k=1, exclude=["<unk>"])[0][0] for w in kind_of}
    return sum(kind_of.get(n) == kind_of[w] for w, n in nearest.items()) / len(kind_of), nearest


def _trained(model: torch.nn.Module) -> bool:
    vocab, _, ids = _kinds()
    batches = sgns_batches(list(ids), len(vocab), KIND_SETTINGS)(12345)  # an epoch the training never drew
    device = next(model.parameters()).device
    with torch.no_grad():
        losses = [model(*(x.to(device) for x in batch)).item() for batch, _ in zip(batches, range(5), strict=False)]
    return sum(losses) / len(losses) < (1 + KIND_SETTINGS.negatives) * math.log(2) - 0.03


@exercise(3, tests="ablating skip-gram's second table: a model whose context vectors are rows of the centre words' "
                   "table, trained on the generated corpus, and the share of words whose nearest neighbour is "
                   "then still of their own kind",
          wrong_answers={"keeps two tables": TWO_TABLES, "the share as a percentage": PERCENT,
                         "an untrained model": NOT_TRAINED})
def check_tied_skipgram(TiedSkipGram: Any, tied_model: Any, tied_share: Any) -> None:
    r"""Exercise 3: ``TiedSkipGram(vocab_size, embed_size, generator)``, skip-gram with one table :math:`E` for
    centres and contexts (its loss :math:`-\log\sigma(\vec v_o\cdot\vec v_c) - \sum_k\log\sigma(-\vec v_{n_k}\cdot
    \vec v_c)`, all rows of :math:`E`); ``tied_model``, one trained on the generated corpus with section 3's
    settings; ``tied_share``, the share of the words with a kind whose nearest neighbour (cosine, ``<unk>``
    left out) is of their own kind. Checked: one ``(V, D)`` table; the loss equals ``sgns_loss`` on that table for
    hidden ids; the model has been trained (its mean loss on five fresh batches of the corpus is below
    :math:`(1 + K)\log 2 - 0.03`); the share equals the one recomputed from the model's table."""
    __tracebackhide__ = True
    answer = (TiedSkipGram, tied_model, tied_share)
    vocab, _, _ = _kinds()
    is_class = lambda a: isinstance(a[0], type) and issubclass(a[0], torch.nn.Module)  # noqa: E731
    properties = [
        ("TiedSkipGram is an nn.Module class", is_class),
        ("TiedSkipGram(vocab_size, embed_size, generator) holds one table of vocab_size x embed_size numbers",
         lambda a: _one_table(a[0])),
        ("its forward(c, o, neg) is sgns_loss with the centres', contexts' and noise words' rows all from that table",
         lambda a: _tied_loss(a[0])),
        ("tied_model is a TiedSkipGram with one row per word of the generated corpus's vocabulary",
         lambda a: isinstance(a[1], a[0]) and _table(a[1]).shape[0] == len(vocab)),
        ("tied_model has been trained", lambda a: _trained(a[1])),
        ("tied_share is the share of words whose nearest neighbour in tied_model's table is of the same kind",
         lambda a: abs(float(a[2]) - _same_kind_share(_table(a[1]))[0]) < 1e-6),
    ]
    mistakes = [(TWO_TABLES, lambda a: is_class(a) and len(list(a[0](11, 4, torch.Generator()).parameters())) > 1),
                (PERCENT, lambda a: isinstance(a[2], int | float) and 1 < a[2] <= 100)]
    try:  # the feedback after a pass: the share, and a word whose neighbour is now of another kind
        share, nearest = _same_kind_share(_table(tied_model))
        _, kind_of, _ = _kinds()
        moved = next((w for w in kind_of if kind_of.get(nearest[w]) != kind_of[w]), None)
        feedback = (f"(With two tables every word's nearest neighbour was of its own kind (section 3); with one table "
                    f"{share:.0%} are" + (f"; the nearest word to {moved!r} is now {nearest[moved]!r}" if moved else "")
                    + ". With one table a high score for two words that occur together makes their vectors close, so "
                    "neighbours drift from words that share their contexts to words that share a sentence.)")
    except Exception:  # noqa: BLE001 - a stub or a wrong answer: the properties say what is wrong
        feedback = None
    check_properties("Exercise 3", answer, properties, mistakes=mistakes, feedback=feedback,
                     hints=("subclass nn.Module with one Embedding E; forward looks up c, o and neg all in E",
                            "train it exactly as section 3 trains SkipGram: train(model, lambda m, b: m(*b), "
                            "sgns_batches(kind_ids, len(kind_vocab), small), epochs=small.epochs, lr=small.lr)",
                            "the share: for each word of kind_of, most_similar(table, kind_vocab.itos, w, k=1, "
                            "exclude=['<unk>']), then count the neighbours of the same kind"))


# --- Exercise 4: which table moves first? ------------------------------------------------------------------------

E_FIRST = "look at the gradient with respect to v_c in section 2.4 when every context vector u is zero"
NOT_E_LATER = "after one step U is no longer zero: what does that do to the gradient with respect to v_c?"


def _changed_by_steps(steps: int) -> list[str]:
    r"""Run ``steps`` Adam steps on a fresh ``SkipGram`` from section 2.5 and report which table the last step
    changed: the truth the predictions are checked against."""
    g = torch.Generator().manual_seed(0)
    V, D, B, K = 50, 8, 64, 5
    model = SkipGram(V, D, torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        before = {name: getattr(model, name).weight.detach().clone() for name in ("E", "U")}
        c, o, neg = torch.randint(V, (B,), generator=g), torch.randint(V, (B,), generator=g), torch.randint(
            V, (B, K), generator=g)
        optimizer.zero_grad()
        model(c, o, neg).backward()
        optimizer.step()
    return [name for name in ("E", "U") if not torch.equal(before[name], getattr(model, name).weight.detach())]


def _as_answer(changed: Sequence[str]) -> str:
    return {0: "neither", 2: "both"}.get(len(changed), changed[0] if changed else "neither")


def _normalise(answer: Any) -> Any:
    r"""``"U"``, ``"u"``, ``{"U"}``, ``["E", "U"]``, ``"E and U"``... as one of ``e``, ``u``, ``both``, ``neither``."""
    if isinstance(answer, str):
        names = {w for w in answer.replace(",", " ").upper().split() if w in ("E", "U")}
        word = answer.strip().lower()
        if word in ("both", "neither", "none"):
            return "neither" if word == "none" else word
        answer = names or answer
    if isinstance(answer, set | frozenset | list | tuple) and all(isinstance(a, str) for a in answer):
        names = {a.strip().upper() for a in answer}
        if names <= {"E", "U"}:
            return {0: "neither", 2: "both"}.get(len(names), next(iter(names), "").lower())
    return answer


@exercise(4, tests="predicting, from the gradient formula and U's zero start, which table the first optimiser step "
                   "changes and which the second changes",
          wrong_answers={"E or both at the first step": E_FIRST, "only U at the second step too": NOT_E_LATER})
def check_which_table_moves(first_step: Any, second_step: Any) -> None:
    r"""Exercise 4: ``first_step`` and ``second_step``, each ``"E"``, ``"U"``, ``"both"`` or ``"neither"`` (or a
    set of table names): which of ``SkipGram``'s tables the first, and then the second, Adam step changes, starting
    from the initialisation of section 2.5. The truth is measured at check time by running the two steps."""
    __tracebackhide__ = True
    valid = ("e", "u", "both", "neither")
    for part, answer, steps, mistakes in (("first step", first_step, 1, [(E_FIRST, "e"), (E_FIRST, "both")]),
                                          ("second step", second_step, 2, [(NOT_E_LATER, "u")])):
        truth = _as_answer(_changed_by_steps(steps)).lower()
        answer = answer if answer is Ellipsis else _normalise(answer)
        check_properties(
            f"Exercise 4 ({part})", answer,
            [("it is one of 'E', 'U', 'both' or 'neither'", lambda a: a in valid),
             (f"it names the table(s) that the {part} changes", lambda a, t=truth: a == t)],
            mistakes=[(message, lambda a, w=wrong: a == w) for message, wrong in mistakes],
            feedback=("(U starts at zero, so the gradient with respect to every centre vector, a sum of u's, is zero: "
                      "the first step moves U only.)" if steps == 1 else
                      "(Now U is not zero, so the centre vectors get a gradient too.)"),
            hints=("the gradient with respect to v_c (section 2.4) is a sum of context vectors u, each times a "
                   "number", "Adam moves a parameter only where its gradient has been non-zero"))


# --- Exercise 5: the analogy that breaks -------------------------------------------------------------------------

QUADS = (("man", "king", "woman", "queen"), ("walk", "walked", "go", "went"), ("cat", "cats", "dog", "dogs"),
         ("france", "paris", "italy", "rome"), ("japan", "tokyo", "china", "beijing"),
         ("small", "smaller", "large", "larger"))


def _first_broken(E: torch.Tensor, vocab: Sequence[str], quads: Sequence[tuple[str, ...]],
                  top: dict | None = None) -> tuple | None:
    r"""The reference; ``top`` caches each quadruple's top answer (one look-up per quadruple and table)."""
    top = {} if top is None else top
    for q in quads:
        if q not in top:
            top[q] = analogy(E, vocab, *q[:3])[0][0]
        if top[q] != q[3]:
            return tuple(q)
    return None


@exercise(5, tests="exploring a pretrained table: the first analogy of a list whose top 3CosAdd answer is wrong "
                   "(or None), on reorderings of the list")
def check_broken_analogy(first_broken: Any, E: torch.Tensor, vocab: Sequence[str]) -> None:
    r"""Exercise 5: ``first_broken(E, vocab, quads)`` returns the first ``(a, b, c, d)`` of ``quads`` whose top
    answer by :func:`mmtutor.word2vec.analogy` is not ``d``, or ``None``. Checked on the table ``E`` with the list
    ``QUADS``, with its broken quadruple moved to the end, and without it (the answer is then ``None``)."""
    __tracebackhide__ = True
    top: dict = {}
    broken = _first_broken(E, vocab, QUADS, top)
    without = [q for q in QUADS if q != broken]
    orders = [list(QUADS), without + ([broken] if broken else []), without]

    def inputs(generator: torch.Generator) -> tuple:
        return E, vocab, orders[int(generator.initial_seed())]  # trial t is seeded with t

    check_function("Exercise 5", first_broken, lambda E_, vocab_, quads: _first_broken(E_, vocab_, quads, top),
                   inputs, trials=len(orders),
                   hints=("for each (a, b, c, d), compare analogy(E, vocab, a, b, c)[0][0] with d",
                          "return the quadruple as soon as one is wrong, and None after the loop"))
