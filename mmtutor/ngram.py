r"""Chapter 4, the baselines: language models that only count (uniform, unigram, bigram), exactly.

Each returns a table of log-probabilities, natural log:

* :func:`uniform_log_probs` ``(V,)``: $p(w) = 1/V$, perplexity exactly $V$;
* :func:`unigram_log_probs` ``(V,)``: $p(w) = (c(w) + k) / (N + kV)$;
* :func:`bigram_log_probs` ``(V, V)``, row = previous token: add-$k$, $p(w \mid v) = (c(v, w) + k) / (c(v) + kV)$;
* :func:`kneser_ney_log_probs` ``(V, V)``: interpolated Kneser-Ney (Kneser and Ney 1995; Chen and Goodman 1998);
* :func:`table_nll`: the total negative log-likelihood (nats) of a sequence under such a table;
* :func:`ngram_nll`: an add-$k$ $n$-gram for any $n \ge 2$, counted sparsely (a trigram table would have $V^3$ cells);
* :func:`bits_per_byte`: nats over tokens -> bits per byte of text, so that tokenisations compare fairly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import float_tensor, id_tensor, number, positive_int


def _counts(ids: Tensor, V: int) -> Tensor:
    """Bigram counts ``c[v, w]`` = how often ``w`` follows ``v`` in ``ids (N,)``: ``(V, V)`` float64."""
    id_tensor("ids", ids, V, "(N,)")
    pair = ids[:-1].long() * V + ids[1:].long()  # (N - 1,): one number per (v, w)
    return torch.bincount(pair.cpu(), minlength=V * V).view(V, V).double()


def uniform_log_probs(V: int) -> Tensor:
    r"""$\log p(w) = -\log V$ for every token: ``(V,)``."""
    positive_int("V", V)
    return torch.full((V,), -math.log(V), dtype=torch.float64)


def unigram_log_probs(ids: Tensor, V: int, k: float = 1.0) -> Tensor:
    r"""Add-$k$ unigram, $\log p(w) = \log \frac{c(w) + k}{N + kV}$, from the training ids ``(N,)``: ``(V,)``."""
    positive_int("V", V)
    id_tensor("ids", ids, V, "(N,)")
    number("k", k, low=0.0, low_open=True)
    c = torch.bincount(ids.cpu().long(), minlength=V).double()  # (V,)
    return ((c + k) / (c.sum() + k * V)).log()


def bigram_log_probs(ids: Tensor, V: int, k: float = 1.0) -> Tensor:
    r"""Add-$k$ bigram, $\log p(w \mid v) = \log \frac{c(v, w) + k}{c(v) + kV}$: ``(V, V)``, row ``v`` sums to 1."""
    positive_int("V", V)
    number("k", k, low=0.0, low_open=True)
    c = _counts(ids, V)  # (V, V)
    return ((c + k) / (c.sum(1, keepdim=True) + k * V)).log()


def kneser_ney_log_probs(ids: Tensor, V: int, d: float = 0.75) -> Tensor:
    r"""Interpolated Kneser-Ney bigram with discount ``d`` in ``(0, 1)``: ``(V, V)``, row ``v`` sums to 1.

    $$p(w \mid v) = \frac{\max(c(v, w) - d, 0)}{c(v)} + \frac{d\, N_{1+}(v\,\cdot)}{c(v)}\, p_{\text{cont}}(w),
      \qquad p_{\text{cont}}(w) = \frac{N_{1+}(\cdot\, w) + 1}{N_{1+}(\cdot\,\cdot) + V}$$

    $N_{1+}(v\,\cdot)$ is the number of distinct tokens seen after $v$, $N_{1+}(\cdot\, w)$ the number of distinct
    tokens seen before $w$: a token that follows many different tokens is a likely guess in a new context.
    (The $+1$ keeps a token never seen in second place possible.) A context never seen gets $p_{\text{cont}}$.
    """
    positive_int("V", V)
    number("d", d, low=0.0, high=1.0, low_open=True, high_open=True)
    c = _counts(ids, V)  # (V, V)
    seen = (c > 0).double()
    p_cont = (seen.sum(0) + 1) / (seen.sum() + V)  # (V,)
    c_v = c.sum(1, keepdim=True)  # (V, 1)
    backoff = torch.where(c_v > 0, d * seen.sum(1, keepdim=True) / c_v.clamp(min=1), torch.ones_like(c_v))  # (V, 1)
    p = (c - d).clamp(min=0) / c_v.clamp(min=1) + backoff * p_cont  # (V, V)
    return p.log()


def table_nll(log_probs: Tensor, ids: Tensor) -> float:
    r"""Total negative log-likelihood in nats of predicting ``ids[1:]``, each from the token before it:

    $$\mathrm{NLL} = -\sum_{t=1}^{N-1} \log p(x_t \mid x_{t-1})$$

    ``log_probs`` is ``(V,)`` (a unigram: the previous token is ignored) or ``(V, V)`` (a bigram).
    """
    float_tensor("log_probs", log_probs)
    if log_probs.ndim not in (1, 2):
        raise ValueError(f"log_probs must be (V,) or (V, V), got {tuple(log_probs.shape)}")
    ids = id_tensor("ids", ids, log_probs.shape[-1], "(N,)").cpu().long()
    if log_probs.ndim == 1:
        return -log_probs[ids[1:]].sum().item()
    return -log_probs[ids[:-1], ids[1:]].sum().item()


def bits_per_byte(nats: float, n_bytes: int) -> float:
    r"""$\mathrm{bpb} = \frac{\mathrm{NLL}_{\text{nats}}}{n_{\text{bytes}} \ln 2}$: the cost of the text in bits per
    UTF-8 byte, whatever the tokens were (a token that covers 3 bytes carries 3 bytes' worth of surprise)."""
    number("nats", nats, low=0.0)
    positive_int("n_bytes", n_bytes)
    return nats / (n_bytes * math.log(2))


def _gram_codes(ids: Tensor, m: int, V: int) -> Tensor:
    """One integer per window of ``m`` tokens: ``x_t V^{m-1} + ... + x_{t+m-1}``: ``(N - m + 1,)``."""
    codes = torch.zeros(len(ids) - m + 1, dtype=torch.long)
    for j in range(m):
        codes = codes * V + ids[j:len(ids) - m + 1 + j]
    return codes


def _count_of(seen: Tensor, query: Tensor) -> Tensor:
    """How often each code of ``query`` occurs in ``seen`` (non-empty); 0 if never: float64 ``query.shape``."""
    uniq, counts = torch.unique(seen, return_counts=True)  # sorted
    pos = torch.searchsorted(uniq, query).clamp(max=len(uniq) - 1)
    return torch.where(uniq[pos] == query, counts[pos], 0).double()


def ngram_nll(train_ids: Tensor, ids: Tensor, V: int, n: int = 3, k: float = 1.0) -> float:
    r"""Total negative log-likelihood (nats) of ``ids[n-1:]`` under an add-$k$ $n$-gram counted on ``train_ids``:

    $$p(w \mid u) = \frac{c(u, w) + k}{c(u) + kV}, \qquad u = x_{t-n+1} \dots x_{t-1},$$

    with $c(u)$ the number of times $u$ is followed by a token in the training ids. For ``n = 2`` this is
    :func:`bigram_log_probs` scored by :func:`table_nll`.
    """
    positive_int("V", V)
    positive_int("n", n, minimum=2)
    number("k", k, low=0.0, low_open=True)
    if V ** n >= 2 ** 62:
        raise ValueError(f"V^n = {V}^{n} is too large to code the n-grams in 64 bits")
    train_ids = id_tensor("train_ids", train_ids, V, "(N,)").cpu().long()
    ids = id_tensor("ids", ids, V, "(N,)").cpu().long()
    if len(train_ids) < n or len(ids) < n:
        raise ValueError(f"train_ids and ids need at least n = {n} tokens, got {len(train_ids)} and {len(ids)}")
    c_uw = _count_of(_gram_codes(train_ids, n, V), _gram_codes(ids, n, V))  # (N - n + 1,)
    c_u = _count_of(_gram_codes(train_ids[:-1], n - 1, V), _gram_codes(ids[:-1], n - 1, V))
    return -((c_uw + k) / (c_u + k * V)).log().sum().item()
