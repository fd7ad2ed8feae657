r"""Chapter 3: attention, $\vec a = A(\vec h, \vec H)$: how much each word matters, to the sentence or to
each other word.

Pure functions hold the maths, thin modules hold the parameters:

* :func:`masked_softmax`: a softmax that gives masked positions weight exactly 0;
  :func:`masked_mean`: the plain mean over the real tokens, the pooling attention is compared with;
* :class:`SelfAttention`: the original write-up's attention pooling, the one of hierarchical attention
  networks (Yang et al., 2016), $u_t = \tanh(W h_t)$, $a = \mathrm{softmax}_t(V u_t)$,
  $s = \sum_t a_t h_t$: one vector per sequence. Despite its name it is not self-attention (no position
  attends to another); its scoring network descends from Bahdanau et al.'s (2015) additive attention,
  which scores encoder states against a decoder query, where here one learned vector $V$ plays the query;
* :func:`scaled_dot_product_attention`: $\mathrm{softmax}(Q K^\top / \sqrt{d_k})\, V$ (Vaswani et al., 2017),
  the same output as ``torch.nn.functional.scaled_dot_product_attention`` plus the weights;
* :func:`causal_mask`, :func:`padding_mask`: boolean masks, True = may attend / real token;
* :class:`MultiHeadSelfAttention`: h heads of scaled dot-product attention side by side, with the
  parameter layout of BERT (separate query, key, value and output projections);
* :func:`sinusoidal_positions`: the fixed position code of "Attention Is All You Need";
  :func:`sinusoidal_shift`: the linear map (a rotation per pair of columns) that moves it by $k$ positions.

The Transformer encoder block built from these lives in :mod:`mmtutor.transformer`, the chapter's
experiments in :mod:`mmtutor.attention_tasks`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import (
    bool_mask,
    broadcast,
    broadcasts_to,
    float_tensor,
    has_shape,
    instance,
    int_tensor,
    like,
    number,
    positive_int,
    same_dtype_and_device,
)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    r"""Softmax of ``scores`` along ``dim`` over the positions where ``mask`` is True.

    $$a_i = \frac{m_i e^{s_i}}{\sum_j m_j e^{s_j}}$$

    ``scores``: a float tensor of any shape; ``mask``: bool, broadcastable to ``scores.shape``, True = keep
    (``None`` keeps everything). Masked positions get weight exactly 0 (their score becomes ``-inf``). A slice
    with no True entry at all gets weights 0 everywhere (not NaN, and no NaN gradient either), which is what
    ``torch.nn.functional.scaled_dot_product_attention`` returns for such a row. A mask that is not bool, is
    on another device or does not broadcast raises ``TypeError`` / ``ValueError``.
    """
    float_tensor("scores", scores, min_ndim=1)
    if mask is None:
        return torch.softmax(scores, dim=dim)
    broadcasts_to("mask", bool_mask("mask", mask, scores.device), scores.shape, "the scores' shape")
    mask = mask.reshape((1,) * (scores.ndim - mask.ndim) + tuple(mask.shape))  # same rank, so `dim` agrees
    empty = ~mask.any(dim=dim, keepdim=True)  # slices with nothing to attend to (on the small mask)
    # -inf gives exactly 0 after the softmax; an empty slice keeps its scores (finite, no NaN) ...
    weights = torch.softmax(scores.masked_fill(~(mask | empty), float("-inf")), dim=dim)
    if bool(empty.any()):  # ... and is set to 0 afterwards (its gradient is 0 too)
        weights = weights.masked_fill(empty, 0.0)
    return weights


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""The mean of the states of the real tokens, the pooling that attention learns to beat:

    $$s = \frac{\sum_t m_t \vec x_t}{\max(1, \sum_t m_t)}$$

    ``x (B, T, H)`` float, ``mask (B, T)`` bool (True = real token) -> ``s (B, H)``; a row with no real
    token gives 0. A mask of the wrong dtype, device or shape raises ``TypeError`` / ``ValueError``.
    """
    B, T, _ = float_tensor("x", x, "(B, T, H)").shape
    has_shape("mask", bool_mask("mask", mask, x.device), "(B, T)", B=B, T=T)
    m = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    return (x * m).sum(1) / m.sum(1).clamp(min=1)  # (B, H)


class SelfAttention(nn.Module):
    r"""The original write-up's attention pooling: a weighted average of the states, weights learned.

    $$u_t = \tanh(W h_t + b_W), \qquad e_t = V u_t + b_V, \qquad
      a = \mathrm{softmax}_t(e), \qquad s = \sum_t a_t h_t$$

    This is the attention pooling of hierarchical attention networks (Yang et al., 2016): there is no
    query from outside the sequence, the learned row $V$ (their "context vector") asks every state the
    same question. The name ``SelfAttention`` is the original write-up's; it is not the self-attention
    of Transformers (:class:`MultiHeadSelfAttention`), where every position attends to every other. The
    scoring network $V \tanh(W h_t)$ descends from the additive attention of Bahdanau et al. (2015),
    $v^\top \tanh(W h_t + U s_{i-1})$, which compares encoder states with a decoder state $s_{i-1}$.

    ``.W = nn.Linear(H, H)`` and ``.V = nn.Linear(H, 1)`` as in the original write-up. ``forward(x, mask=None,
    return_weights=False)`` takes states ``x (B, T, H)`` and an optional padding mask ``(B, T)``
    (bool, True = real token; padded positions get weight exactly 0) and returns ``s (B, H)``, or
    ``(s, a)`` with ``a (B, T)`` when ``return_weights=True``. Inputs of the wrong shape, dtype or device,
    and a mask row without a real token, raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.W = nn.Linear(hidden_size, hidden_size)
        self.V = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        like("x", float_tensor("x", x, min_ndim=3), self.W.weight)
        B, T, _ = has_shape("x", x, "(B, T, H)", H=self.hidden_size).shape
        if mask is not None:
            has_shape("mask", bool_mask("mask", mask, x.device), "(B, T)", B=B, T=T)
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every sequence needs at least one real token (a mask row is all False)")
        u = torch.tanh(self.W(x))  # (B, T, H)
        e = self.V(u).squeeze(-1)  # (B, T)
        a = masked_softmax(e, mask, dim=-1)  # (B, T)
        s = torch.einsum("bt,bth->bh", a, x)  # (B, H)
        return (s, a) if return_weights else s


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, *,
                                 scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Every query takes a weighted average of the values; the weights compare it with every key.

    $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$

    Queries ``q (..., T_q, d_k)``, keys ``k (..., T_k, d_k)``, values ``v (..., T_k, d_v)`` (leading
    dimensions broadcast); ``mask``: bool, broadcastable to ``(..., T_q, T_k)``, True = this query may attend
    to this key; ``scale`` multiplies the scores (``None``: ``1 / sqrt(d_k)``, a temperature of ``sqrt(d_k)``).
    Returns ``(out (..., T_q, d_v), weights (..., T_q, T_k))``; ``out`` equals
    ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)``, each row of ``weights`` sums to 1
    (0 for a query that may attend to nothing). Sizes that do not fit, mixed dtypes or devices and a bad mask
    raise ``TypeError`` / ``ValueError``.
    """
    float_tensor("q", q, "(..., T_q, d_k)")
    float_tensor("k", k, "(..., T_k, d_k)", d_k=q.shape[-1])
    float_tensor("v", v, "(..., T_k, d_v)", T_k=k.shape[-2])
    same_dtype_and_device("q, k, v", q, k, v)
    broadcast("the leading dimensions of q, k and v", q.shape[:-2], k.shape[:-2], v.shape[:-2])
    d_k = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(d_k)
    scores = (q * scale) @ k.transpose(-2, -1)  # (..., T_q, T_k); scaling q costs T*d, not T*T
    weights = masked_softmax(scores, mask, dim=-1)  # (..., T_q, T_k); checks the mask
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    r"""``(T, T)`` bool, True on and below the diagonal: position $i$ may attend to positions $j \le i$; a ``T``
    that is not a positive int raises ``ValueError``."""
    return torch.ones(positive_int("T", T), T, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, T: int | None = None) -> torch.Tensor:
    r"""``(B, T)`` bool, True at the first ``lengths[b]`` positions of row b (the real tokens).

    ``lengths (B,)`` integers in ``[0, T]``; ``T`` defaults to the longest. Anything else raises
    ``TypeError`` / ``ValueError``.
    """
    int_tensor("lengths", lengths, "(B,)", low=0, high=T)
    T = T if T is not None else int(lengths.max()) if len(lengths) else 0
    return torch.arange(T, device=lengths.device) < lengths.unsqueeze(1)  # (B, T)


class MultiHeadSelfAttention(nn.Module):
    r"""``n_heads`` attentions in parallel, each on its own ``d_k = d_model / n_heads`` slice.

    $$\mathrm{head}_i = \mathrm{Attention}(X W^Q_i, X W^K_i, X W^V_i), \qquad
      \mathrm{MHA}(X) = [\mathrm{head}_1; \dots; \mathrm{head}_h] W^O$$

    Parameters (each an ``nn.Linear(d_model, d_model)``; head i uses rows ``i*d_k:(i+1)*d_k`` of the
    q, k, v projections and the same columns of ``out_proj``):

    ============  =====================================  ==============================
    ours          ``nn.MultiheadAttention``               BERT (Hugging Face)
    ============  =====================================  ==============================
    ``q_proj``    ``in_proj_weight[:D]``, bias likewise   ``attention.self.query``
    ``k_proj``    ``in_proj_weight[D:2D]``                ``attention.self.key``
    ``v_proj``    ``in_proj_weight[2D:]``                 ``attention.self.value``
    ``out_proj``  ``out_proj``                            ``attention.output.dense``
    ============  =====================================  ==============================

    ``forward(x, mask=None, causal=False, return_weights=False)``: ``x (B, T, D)``; ``mask (B, T)``
    bool, True = real token (padding is never attended to); ``causal`` adds :func:`causal_mask`.
    Returns ``y (B, T, D)``, and the per-head weights ``(B, n_heads, T, T)`` if asked. Sizes that are not
    positive ints or do not divide, and inputs of the wrong shape, dtype or device, raise ``TypeError`` /
    ``ValueError``.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True) -> None:
        super().__init__()
        if positive_int("d_model", d_model) % positive_int("n_heads", n_heads):
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        B, T, D = like("x", float_tensor("x", x, "(B, T, D)", D=self.d_model), self.q_proj.weight).shape
        allowed = None
        if mask is not None:
            has_shape("mask", bool_mask("mask", mask, x.device), "(B, T)", B=B, T=T)
            allowed = mask[:, None, None, :]  # (B, 1, 1, T): every query, every head, real keys only
        if causal:
            tri = causal_mask(T, device=x.device)  # (T, T)
            allowed = tri if allowed is None else allowed & tri  # (B, 1, T, T)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        heads, weights = scaled_dot_product_attention(q, k, v, allowed)  # (B, h, T, d_k), (B, h, T, T)
        y = self.out_proj(heads.transpose(1, 2).reshape(B, T, D))  # (B, T, D)
        return (y, weights) if return_weights else y

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadSelfAttention:
        """Copy the weights of a ``nn.MultiheadAttention`` of the same size (packed in_proj) into ours; another
        module raises ``TypeError``, other sizes or biases ``ValueError``."""
        instance("mha", mha, nn.MultiheadAttention, "an nn.MultiheadAttention")
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads or mha.in_proj_weight is None:
            raise ValueError(f"expected embed_dim={self.d_model}, num_heads={self.n_heads} with equal "
                             f"q/k/v sizes, got embed_dim={mha.embed_dim}, num_heads={mha.num_heads}")
        if (mha.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError("one module has biases and the other has none")
        D = self.d_model
        for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            proj.weight.copy_(mha.in_proj_weight[i * D:(i + 1) * D])
            if proj.bias is not None:
                proj.bias.copy_(mha.in_proj_bias[i * D:(i + 1) * D])
        self.out_proj.load_state_dict(mha.out_proj.state_dict())
        return self


def sinusoidal_positions(T: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    r"""The fixed position code ``(T, d_model)`` of Vaswani et al. (2017), for an even ``d_model``:

    $$P_{t, 2i} = \sin(t / \mathrm{base}^{2i/d}), \qquad P_{t, 2i+1} = \cos(t / \mathrm{base}^{2i/d})$$

    Every pair of columns is a clock at its own frequency $\omega_i = \mathrm{base}^{-2i/d}$, so
    $P_{t+k}$ is a fixed linear map of $P_t$, the same for every $t$: pair $i$ is rotated by the angle
    $\omega_i k$ (:func:`sinusoidal_shift` builds that map).
    A size that is not a positive int, or an odd ``d_model``, raises ``ValueError``.
    """
    positive_int("T", T)
    if positive_int("d_model", d_model) % 2:
        raise ValueError(f"d_model must be even (sin and cos pairs), got {d_model}")
    t = torch.arange(T, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,) = 2i
    angle = t / base ** (i / d_model)  # (T, d/2)
    P = torch.empty(T, d_model, dtype=torch.float64)
    P[:, 0::2], P[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return P.float()


def sinusoidal_shift(k: float, d_model: int, base: float = 10000.0) -> torch.Tensor:
    r"""The ``(d_model, d_model)`` matrix $M_k$ with $P_{t+k} = P_t M_k$ for every $t$ (rows of
    :func:`sinusoidal_positions`): block diagonal, one rotation by $\omega_i k$ per pair of columns,

    $$\begin{bmatrix} P_{t+k,2i} & P_{t+k,2i+1} \end{bmatrix} =
      \begin{bmatrix} P_{t,2i} & P_{t,2i+1} \end{bmatrix}
      \begin{bmatrix} \cos \omega_i k & -\sin \omega_i k \\ \sin \omega_i k & \cos \omega_i k \end{bmatrix},
      \qquad \omega_i = \mathrm{base}^{-2i/d}$$

    (from $\sin(a + b) = \sin a \cos b + \cos a \sin b$ and $\cos(a + b) = \cos a \cos b - \sin a \sin b$).
    $M_k$ depends on the offset $k$ alone, and $M_{-k} = M_k^\top \ne M_k$: a linear layer can map a position to
    the one $k$ words ahead, or behind, and tell the two apart. A ``k`` that is not a number, a size that is not
    a positive int, or an odd ``d_model``, raises ``ValueError`` / ``TypeError``.
    """
    number("k", k)
    if positive_int("d_model", d_model) % 2:
        raise ValueError(f"d_model must be even (sin and cos pairs), got {d_model}")
    omega = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    cos, sin = torch.cos(omega * k), torch.sin(omega * k)  # (d/2,)
    M = torch.zeros(d_model, d_model, dtype=torch.float64)
    even = torch.arange(0, d_model, 2)
    M[even, even], M[even, even + 1] = cos, -sin            # row 2i: the sine column
    M[even + 1, even], M[even + 1, even + 1] = sin, cos     # row 2i+1: the cosine column
    return M.float()
