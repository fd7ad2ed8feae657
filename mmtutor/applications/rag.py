r"""Retrieval-augmented generation (Lewis et al. 2020): search first, then let the language model read what was found.

A small model knows little about a given week's news, and what it does not know it often makes up. RAG
puts the passages a retriever found into the prompt, so the answer can be copied from text instead of
recalled from weights:

$$\hat y = \mathrm{LM}\big(\text{instruction} \,\|\, p_1 \,\|\, \dots \,\|\, p_k \,\|\, q\big), \qquad
  p_1, \dots, p_k = \mathrm{top}_k\ \mathrm{score}(q, p)$$

* :func:`build_prompt`: the chat messages, with the passages numbered, or none for the closed-book baseline;
* :func:`prompt_ids`: the prompt's tokens, the passages cut to a context budget;
* :func:`greedy_replies`: greedy decoding through chapter 4's KV-cache protocol that stops at the end-of-turn
  token (the same tokens as ``generate(..., temperature=0)``), many prompts per batch, their shared prefix
  (:func:`shared_prefix_length`) run once, the rest left-padded when the model supports it (chapter 5's Llama)
  or grouped by length;
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

INSTRUCTION = "Answer the question with a name or a number."
RAG_INSTRUCTION = "Answer the question with a name or a number from the passages below."


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
def greedy_replies(model: nn.Module, prompts: Sequence[Sequence[int]], stop_id: int, max_new_tokens: int = 24,
                   batch_size: int = 8) -> list[list[int]]:
    r"""The greedy continuation of every prompt up to (not including) ``stop_id``, at most ``max_new_tokens`` each.

    $x_{t+1} = \arg\max_v\, p_\theta(v \mid x_{\le t})$ (``sample_next`` at temperature 0): each prompt goes through
    the model once with a :class:`~mmtutor.language_model.KVCache`, then one token per step: the same tokens as
    ``generate(..., temperature=0)``, but stopping where the reply ends. ``model`` follows the cache protocol
    (``model(ids, cache) -> logits``, ``model.context_length``).

    Prompts run ``batch_size`` at a time: a decoding step reads every weight of the model once whether it
    extends one sequence or eight, so batching makes the steps nearly free. The prompts of a batch share
    their first tokens (the chat template and the instruction): that prefix runs once and its cache is
    shared (:meth:`~mmtutor.language_model.KVCache.expand`), as serving systems cache a common prompt. A
    model with ``supports_padding`` (chapter 5's :class:`~mmtutor.pretrained.llama.Llama`) takes the rest
    of prompts of any lengths together, padded on the left of the rest so that every row's next token sits in
    the last column, the pads hidden by ``attention_mask``; other models (chapter 4's GPT) batch prompts of
    one length.
    """
    prompts = [list(p) for p in prompts]
    if not prompts or any(not p or any(not isinstance(t, int) for t in p) for p in prompts):
        raise ValueError("prompts must be non-empty lists of token ids")
    positive_int("max_new_tokens", max_new_tokens)
    positive_int("batch_size", batch_size)
    longest = max(map(len, prompts))
    if longest + max_new_tokens > model.context_length:
        raise ValueError(f"{longest} prompt tokens + {max_new_tokens} new ones exceed the context of "
                         f"{model.context_length}")
    device = next(model.parameters()).device
    padded = getattr(model, "supports_padding", False)
    groups: dict[int, list[int]] = {}
    for i in sorted(range(len(prompts)), key=lambda i: len(prompts[i])):  # shortest first: the least padding
        groups.setdefault(0 if padded else len(prompts[i]), []).append(i)
    replies: list[list[int]] = [[] for _ in prompts]
    for members in groups.values():
        for s in range(0, len(members), batch_size):
            rows = members[s:s + batch_size]
            for j, token in _greedy_batch(model, [prompts[i] for i in rows], stop_id, max_new_tokens, padded, device):
                replies[rows[j]].append(token)
    return replies


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many first tokens all ``prompts`` share, leaving each at least one token of its own."""
    shortest = min(map(len, prompts))
    return next((t for t in range(shortest - 1) if any(p[t] != prompts[0][t] for p in prompts)), shortest - 1)


def _greedy_batch(model: nn.Module, prompts: list[list[int]], stop_id: int, max_new_tokens: int, padded: bool,
                  device: torch.device) -> list[tuple[int, int]]:
    """``(row, token)`` of every reply token of one batch, in the order they come."""
    last = {"logits_to_keep": 1} if padded else {}  # a padding model also skips the logits nobody reads
    P = shared_prefix_length(prompts)
    cache = KVCache()
    if P:  # the shared prefix once, its keys and values then read by every row
        model(torch.tensor([prompts[0][:P]], device=device), cache=cache, **last)
        cache.expand(len(prompts))
    rest = [p[P:] for p in prompts]  # every row keeps at least one token
    width = max(map(len, rest))
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rest], device=device)  # (b, width) pads on the left
    real = torch.ones(len(rest), P + width, dtype=torch.bool, device=device)  # (b, S) False at the pads
    for j, r in enumerate(rest):
        real[j, P:P + width - len(r)] = False

    def step(x: torch.Tensor, **extra: int) -> torch.Tensor:  # the last logits (b, V); equal lengths need no mask
        return model(x, cache=cache, **({"attention_mask": real} if padded else {}), **extra)[:, -1]

    logits = step(ids, **last)  # (b, V)
    done, out = [False] * len(prompts), []
    for _ in range(max_new_tokens):
        tokens = sample_next(logits, temperature=0.0)  # (b,) the argmax of each row
        for j, token in enumerate(tokens.tolist()):
            done[j] = done[j] or token == stop_id
            if not done[j]:
                out.append((j, token))
        if all(done):
            break
        if padded:
            real = torch.cat([real, real.new_ones(len(prompts), 1)], dim=1)  # (b, S + 1) the new token is real
        logits = step(tokens[:, None])  # finished rows run on, unread
    return out


def prompt_ids(tokenizer: object, question: str, passages: Sequence[str] = (), budget: int | None = None) -> list[int]:
    """Token ids of the chat prompt of :func:`build_prompt`, passages cut to keep the prompt within ``budget`` tokens.

    A RAG system has a context budget: the passages (best first) fill what the instruction and the question leave,
    and the last one is cut mid-sentence if need be (passages shorter than the room are kept whole, and the prompt is
    shorter than the budget). Without ``budget`` (or passages) nothing is cut. ``tokenizer``
    needs ``encode(text)`` and ``chat(messages)`` (chapter 5's SmolLM2 tokenizer).
    """
    text = tokenizer.chat(build_prompt(question, passages))
    if budget is None or not passages:
        return tokenizer.encode(text)
    block = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    start = text.index(block)
    prefix, middle, suffix = (tokenizer.encode(part) for part in (text[:start], block, text[start + len(block):]))
    room = positive_int("budget", budget) - len(prefix) - len(suffix)
    if room < 1:
        raise ValueError(f"a budget of {budget} tokens leaves no room for passages after {len(prefix) + len(suffix)} "
                         "tokens of instruction and question")
    return prefix + middle[:room] + suffix


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
