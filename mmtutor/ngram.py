r"""Chapter 4, the baselines: language models that only count (uniform, unigram, bigram), exactly.

Each returns a table of log-probabilities, natural log:

* :func:`uniform_log_probs` ``(V,)``: $p(w) = 1/V$, perplexity exactly $V$;
* :func:`unigram_log_probs` ``(V,)``: $p(w) = (c(w) + k) / (N + kV)$;
* :func:`bigram_log_probs` ``(V, V)``, row = previous token: add-$k$, $p(w \mid v) = (c(v, w) + k) / (c(v) + kV)$;
* :func:`kneser_ney_log_probs` ``(V, V)``: interpolated Kneser-Ney (Kneser and Ney 1995; Chen and Goodman 1998);
* :func:`table_nll`: the total negative log-likelihood (nats) of a sequence under such a table;
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
