r"""Chapter 9's exercises: understanding and generating text.

* exercise 1 (build the prompt, :func:`~mmtutor.exercises.check_function`): :func:`check_rag_prompt`, the chat
  messages of a retrieval-augmented prompt, against :func:`~mmtutor.applications.rag.build_prompt` on hidden
  questions with zero to three passages;
* exercise 2 (the retriever's metric): :func:`check_gold_recall`, recall@k of the gold passage from a score matrix,
  against a reference built from :func:`~mmtutor.applications.metrics.hit_rate`, ties broken by the smaller index;
* exercise 3 (the probe): :func:`check_logistic_probe`, L2-regularised logistic regression with an unpenalised bias,
  against :func:`~mmtutor.applications.sentiment.fit_logistic` on hidden problems (any correct solver passes).

The references, the hidden inputs and the messages for typical wrong answers live here, not in the notebook.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mmtutor.applications.metrics import hit_rate
from mmtutor.applications.rag import INSTRUCTION, RAG_INSTRUCTION, build_prompt
from mmtutor.applications.sentiment import fit_logistic
from mmtutor.exercises import check_function, exercise

# --- Exercise 1: the RAG prompt -----------------------------------------------------------------------------------

FROM_ZERO = "the passages are numbered from [1], not [0]"
ONE_INSTRUCTION = ("the closed-book prompt (no passages) uses INSTRUCTION, the prompt with passages RAG_INSTRUCTION: "
                   "check which one each case gets")
SYSTEM_ROLE = "one message only, with role 'user': the chat template adds the system line itself"
_WORDS = ["the", "senator", "flood", "Tampa", "bank", "goose", "said", "on", "Friday", "Greig", "17", "per", "cent"]


def _text(g: torch.Generator, n: int) -> str:
    return " ".join(_WORDS[int(i)] for i in torch.randint(len(_WORDS), (n,), generator=g)).capitalize()


def _prompt_inputs(g: torch.Generator) -> tuple[str, list[str]]:
    n_passages = int(torch.randint(0, 4, (1,), generator=g))
    return _text(g, 6) + "?", [_text(g, 8) + "." for _ in range(n_passages)]


def _from_zero(question: str, passages: list[str]) -> list[dict[str, str]]:
    if not passages:
        return build_prompt(question)
    numbered = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages))
    return [{"role": "user", "content": f"{RAG_INSTRUCTION}\n\n{numbered}\n\nQuestion: {question}"}]


def _one_instruction(question: str, passages: list[str]) -> list[dict[str, str]]:
    if not passages:
        return [{"role": "user", "content": f"{RAG_INSTRUCTION}\n\nQuestion: {question}"}]
    numbered = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    return [{"role": "user", "content": f"{INSTRUCTION}\n\n{numbered}\n\nQuestion: {question}"}]


@exercise(1, tests="building the chat messages of a RAG prompt: one user turn with the instruction, the passages "
                   "numbered from [1] best first, and the question; the closed-book prompt without passages",
          wrong_answers={"numbered from [0]": FROM_ZERO, "the instructions swapped": ONE_INSTRUCTION,
                         "a system message added": SYSTEM_ROLE})
def check_rag_prompt(my_build_prompt: Any) -> None:
    r"""Exercise 1: ``my_build_prompt(question, passages)`` returns the list of chat messages of section 2 (the
    package's :func:`~mmtutor.applications.rag.build_prompt`), checked on six hidden questions with 0 to 3 passages."""
    __tracebackhide__ = True
    mistakes = [(FROM_ZERO, _from_zero), (ONE_INSTRUCTION, _one_instruction),
                (SYSTEM_ROLE, lambda q, p: [{"role": "system", "content": "You are a helpful AI assistant."}]
                 + build_prompt(q, p))]
    check_function("Exercise 1", my_build_prompt, build_prompt, _prompt_inputs, trials=6, mistakes=mistakes,
                   hints=("print build_prompt(...) for one question with two passages, and for one without any",
                          "content = instruction, blank line, '[1] passage' lines joined by '\\n', blank line, "
                          "'Question: ' + question",
                          "without passages: INSTRUCTION, a blank line, 'Question: ' + question"))


# --- Exercise 2: recall@k of the gold passage ---------------------------------------------------------------------

ASCENDING = "you kept the k LOWEST scores: a retriever's best passages have the highest scores"
PRECISION = "that is the share of the k retrieved passages that are gold (precision@k): count questions whose top k " \
            "holds a gold passage"
K_PLUS_ONE = "you looked at k + 1 passages (or k - 1): keep exactly the first k of each ranking"


def _ranked(scores: Tensor, gold: Tensor) -> Tensor:
    """``gold`` in each row's ranking order: a stable descending sort of ``scores`` (ties to the smaller index)."""
    return gold.gather(1, torch.sort(scores, dim=1, descending=True, stable=True).indices)


def gold_recall_reference(scores: Tensor, gold: Tensor, k: int) -> float:
    """The reference: rank each row by a stable descending sort, then :func:`hit_rate` of the gold passages at ``k``."""
    return hit_rate(_ranked(scores, gold), k).mean().item()


def _recall_inputs(g: torch.Generator) -> tuple[Tensor, Tensor, int]:
    q, p = int(torch.randint(10, 40, (1,), generator=g)), int(torch.randint(8, 30, (1,), generator=g))
    scores = torch.randint(0, 6, (q, p), generator=g).double()  # many ties
    gold = torch.zeros(q, p, dtype=torch.bool)
    gold[torch.arange(q), torch.randint(p, (q,), generator=g)] = True  # one gold passage per question
    return scores, gold, int(torch.randint(1, 6, (1,), generator=g))


@exercise(2, tests="recall@k of a retriever from its score matrix: the share of questions with a gold passage among "
                   "their k highest-scored passages, ties to the smaller index",
          wrong_answers={"ascending sort": ASCENDING, "precision@k instead": PRECISION, "k + 1 passages": K_PLUS_ONE})
def check_gold_recall(my_gold_recall: Any) -> None:
    r"""Exercise 2: ``my_gold_recall(scores, gold, k)`` with ``scores (Q, P)``, ``gold (Q, P)`` bool, returns the
    fraction of questions whose ``k`` best passages hold a gold one, a float. Checked on four hidden problems."""
    __tracebackhide__ = True
    mistakes = [(ASCENDING, lambda s, g, k: gold_recall_reference(-s, g, k)),
                (PRECISION, lambda s, g, k: _ranked(s, g)[:, :k].double().mean().item()),
                (K_PLUS_ONE, lambda s, g, k: gold_recall_reference(s, g, k + 1)),
                (K_PLUS_ONE, lambda s, g, k: gold_recall_reference(s, g, max(k - 1, 1)))]
    check_function("Exercise 2", my_gold_recall, gold_recall_reference, _recall_inputs, trials=4, mistakes=mistakes,
                   hints=("sort each row of scores from the highest, keep the first k passage indices",
                          "torch.sort(..., descending=True, stable=True) breaks ties by the smaller index",
                          "look the kept indices up in gold (gather), ask .any(1) per question, take the mean"))


# --- Exercise 3: the logistic probe -------------------------------------------------------------------------------

BIAS_PENALISED = "the bias c is penalised too: only w carries the (lambda / 2) |w|^2 term"
NO_HALF = "your penalty is lambda |w|^2: the objective has (lambda / 2) |w|^2"
SUM_LOSS = ("you summed the cross-entropy over the rows: the objective uses its mean "
            "(with scikit-learn, C = 1 / (lambda n))")


def _logistic_inputs(g: torch.Generator) -> tuple[Tensor, Tensor, float]:
    n, d = int(torch.randint(40, 120, (1,), generator=g)), int(torch.randint(2, 7, (1,), generator=g))
    x = torch.randn(n, d, generator=g, dtype=torch.float64) + 0.5  # an offset, so the bias matters
    w = torch.randn(d, generator=g, dtype=torch.float64)
    y = (x @ w + 0.7 * torch.randn(n, generator=g, dtype=torch.float64) > 0.3).long()
    return x, y, 0.02 + 0.1 * float(torch.rand(1, generator=g))


def _fit(x: Tensor, y: Tensor, objective) -> tuple[Tensor, Tensor]:
    """Minimise ``objective(w, c)`` by L-BFGS in float64 (for the wrong variants)."""
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    c = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, c], lr=1, max_iter=300, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = objective(w, c)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), c.detach()


def _bce(x: Tensor, y: Tensor, w: Tensor, c: Tensor, reduction: str = "mean") -> Tensor:
    return F.binary_cross_entropy_with_logits(x @ w + c, y.double(), reduction=reduction)


@exercise(3, tests="the linear probe's logistic regression: mean binary cross-entropy plus (lambda / 2) |w|^2, the "
                   "bias not penalised, solved to its optimum (any solver)",
          wrong_answers={"bias penalised": BIAS_PENALISED, "penalty without the 1/2": NO_HALF,
                         "summed instead of mean loss": SUM_LOSS})
def check_logistic_probe(my_logistic: Any) -> None:
    r"""Exercise 3: ``my_logistic(x, y, weight_decay)`` returns ``(w (D,), c ())`` float64 at the optimum of section 1's
    objective. Checked against :func:`~mmtutor.applications.sentiment.fit_logistic` on three hidden problems, within
    ``1e-4`` (the optimum is unique: the loss is strictly convex)."""
    __tracebackhide__ = True
    mistakes = [
        (BIAS_PENALISED, lambda x, y, lam: _fit(x, y, lambda w, c: _bce(x, y, w, c) + lam / 2 * (w @ w + c * c))),
        (NO_HALF, lambda x, y, lam: fit_logistic(x, y, 2 * lam)),
        (SUM_LOSS, lambda x, y, lam: _fit(x, y, lambda w, c: _bce(x, y, w, c, "sum") + lam / 2 * (w @ w))),
    ]
    check_function("Exercise 3", my_logistic, fit_logistic, _logistic_inputs, atol=1e-4, rtol=1e-3, mistakes=mistakes,
                   hints=("minimise F.binary_cross_entropy_with_logits(x @ w + c, y) + weight_decay / 2 * (w @ w)",
                          "any solver that converges: L-BFGS, many steps of gradient descent, or scikit-learn",
                          "scikit-learn minimises C * sum(log-loss) + |w|^2 / 2: that is ours when C = 1 / (lambda n)"))
