r"""Retrieval-augmented generation (Lewis et al. 2020): search first, then let the language model read what was found.

A small model knows little about a given week's news, and what it does not know it often makes up. RAG
puts the passages a retriever found into the prompt, so the answer can be copied from text instead of
recalled from weights:

$$\hat y = \mathrm{LM}\big(\text{instruction} \,\|\, p_1 \,\|\, \dots \,\|\, p_k \,\|\, q\big), \qquad
  p_1, \dots, p_k = \mathrm{top}_k\ \mathrm{score}(q, p)$$

* :func:`build_prompt`: the chat messages, with the passages numbered, or none for the closed-book baseline;
* :func:`greedy_reply`: greedy decoding through chapter 4's KV-cache protocol that stops at the end-of-turn token
  (the same tokens as ``generate(..., temperature=0)``, without the steps after the answer ended);
* :func:`normalize_answer`, :func:`contains_answer`: the "contains the answer" score of open-domain QA, after
  case, punctuation, "per cent"/"%" and thousands separators are made uniform.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from .._checks import positive_int
from ..language_model import KVCache, sample_next

INSTRUCTION = "Answer the question in a few words."
RAG_INSTRUCTION = "Answer the question in a few words, using the passages below."


def build_prompt(question: str, passages: Sequence[str] = ()) -> list[dict[str, str]]:
    """The chat messages of one question: a single user turn with the instruction, the passages, the question.

    ``passages`` empty: the closed-book prompt (the model answers from its weights). Otherwise each passage
    is numbered ``[1]``, ``[2]``, ... in the order given (best first), so the model sees the best one first.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty str, got {question!r}")
    if isinstance(passages, str) or any(not isinstance(p, str) for p in passages):
        raise TypeError("passages must be a list of strings (one per passage)")
    if not passages:
        return [{"role": "user", "content": f"{INSTRUCTION}\n\nQuestion: {question}"}]
    numbered = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    return [{"role": "user", "content": f"{RAG_INSTRUCTION}\n\n{numbered}\n\nQuestion: {question}"}]


@torch.no_grad()
def greedy_reply(model: nn.Module, prompt_ids: Sequence[int], stop_id: int, max_new_tokens: int = 24) -> list[int]:
    r"""The greedy continuation of ``prompt_ids`` up to (not including) ``stop_id``, at most ``max_new_tokens``.

    $x_{t+1} = \arg\max_v\, p_\theta(v \mid x_{\le t})$ (``sample_next`` at temperature 0), the prompt through the
    model once with a fresh :class:`~mmtutor.language_model.KVCache`, then one token per step. ``model``
    follows the cache protocol (``model(ids, cache) -> logits``, ``model.context_length``).
    """
    ids = torch.as_tensor(list(prompt_ids), dtype=torch.long)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError("prompt_ids must be a non-empty list of token ids")
    positive_int("max_new_tokens", max_new_tokens)
    if len(ids) + max_new_tokens > model.context_length:
        raise ValueError(f"{len(ids)} prompt tokens + {max_new_tokens} new ones exceed the context of "
                         f"{model.context_length}")
    device = next(model.parameters()).device
    cache, reply = KVCache(), []
    logits = model(ids[None].to(device), cache=cache)[:, -1]  # (1, V)
    for _ in range(max_new_tokens):
        token = int(sample_next(logits, temperature=0.0))
        if token == stop_id:
            break
        reply.append(token)
        logits = model(torch.tensor([[token]], device=device), cache=cache)[:, -1]
    return reply


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_PERCENT = re.compile(r"\s*(?:%|per\s*cent\b|percent\b)")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def normalize_answer(text: str) -> str:
    """Lower-case words and numbers separated by single spaces: ``"25 Per cent" -> "25 percent"``,
    ``"$2,300!" -> "2300"``, ``"al-Qaida" -> "al qaida"``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = _PERCENT.sub(" percent", _THOUSANDS.sub("", text.lower()))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def contains_answer(reply: str, answers: Sequence[str]) -> bool:
    """Whether the normalised ``reply`` contains one of the normalised ``answers`` as whole words."""
    if isinstance(answers, str) or not answers:
        raise TypeError("answers must be a non-empty list of accepted answers")
    padded = f" {normalize_answer(reply)} "
    return any(f" {normalize_answer(a)} " in padded for a in answers)
