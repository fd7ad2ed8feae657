"""Chapter 9's exercise checks: right answers pass (any correct form), typical wrong ones get their message,
stubs say TODO, and no message shows an expected value.

covers: mmtutor.exercises.ch09
"""

from __future__ import annotations

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from mmtutor.applications.rag import INSTRUCTION, RAG_INSTRUCTION
from mmtutor.exercises import ExerciseFailed, ch09

SYSTEM = {"role": "system", "content": "You are a helpful AI assistant."}


def _prompt(question, passages):
    if passages:
        body = RAG_INSTRUCTION + "\n\n" + "".join(f"[{i + 1}] {p}\n" for i, p in enumerate(passages)) + "\n"
    else:
        body = INSTRUCTION + "\n\n"
    return [{"role": "user", "content": body + "Question: " + question}]


def test_check_rag_prompt(capsys):
    ch09.check_rag_prompt(_prompt)
    assert "PASS Exercise 1" in capsys.readouterr().out
    for wrong, message in [(ch09._from_zero, r"from \[1\]"), (ch09._one_instruction, "INSTRUCTION"),
                           (lambda q, p: [SYSTEM] + _prompt(q, p), "system line")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch09.check_rag_prompt(wrong)


def test_prompt_inputs_cover_closed_book_and_several_passages():
    counts = {len(ch09._prompt_inputs(torch.Generator().manual_seed(t))[1]) for t in range(6)}
    assert 0 in counts and max(counts) >= 2


def _recall_loop(scores, gold, k):
    found = 0
    for s, g in zip(scores.tolist(), gold.tolist(), strict=True):
        order = sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]
        found += any(g[j] for j in order)
    return found / len(scores)


def test_check_gold_recall(capsys):
    ch09.check_gold_recall(_recall_loop)
    ch09.check_gold_recall(ch09.gold_recall_reference)
    assert capsys.readouterr().out.count("PASS Exercise 2") == 2
    for wrong, message in [(lambda s, g, k: _recall_loop(-s, g, k), "LOWEST"),
                           (lambda s, g, k: _recall_loop(s, g, k + 1), "k \\+ 1"),
                           (lambda s, g, k: ch09._ranked(s, g)[:, :k].double().mean().item(), "precision@k")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch09.check_gold_recall(wrong)


def _sklearn_logistic(x, y, weight_decay):
    clf = LogisticRegression(C=1 / (weight_decay * len(y)), tol=1e-10, max_iter=5000).fit(x.numpy(), y.numpy())
    return torch.tensor(clf.coef_[0], dtype=torch.float64), torch.tensor(clf.intercept_[0], dtype=torch.float64)


def test_check_logistic_probe(capsys):
    ch09.check_logistic_probe(_sklearn_logistic)
    assert "PASS Exercise 3" in capsys.readouterr().out
    for wrong, message in [(lambda x, y, lam: _sklearn_logistic(x, y, 2 * lam), "your penalty is lambda"),
                           (lambda x, y, lam: _sklearn_logistic(x, y, lam / len(y)), "summed"),
                           (lambda x, y, lam: (torch.zeros(x.shape[1], dtype=torch.float64),
                                               torch.zeros((), dtype=torch.float64)), "Exercise 3")]:
        with pytest.raises(ExerciseFailed, match=message):
            ch09.check_logistic_probe(wrong)


def test_stubs_say_todo(capsys):
    ch09.check_rag_prompt(...)
    ch09.check_gold_recall(...)
    ch09.check_logistic_probe(...)
    assert capsys.readouterr().out.count("TODO") == 3
