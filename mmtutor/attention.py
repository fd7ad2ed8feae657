"""Chapter 3: attention, a = A(h, H): how much each word matters, to the sentence or to each other word.

Pure functions hold the maths, thin modules hold the parameters:

* :func:`masked_softmax`: a softmax that gives masked positions weight exactly 0;
* :class:`SelfAttention`: the seed's additive attention pooling (Bahdanau et al., 2015),
  ``u_t = tanh(W h_t)``, ``a = softmax_t(V u_t)``, ``s = sum_t a_t h_t``: one vector per sequence;
* :func:`scaled_dot_product_attention`: ``softmax(Q K^T / sqrt(d_k)) V`` (Vaswani et al., 2017),
  the same output as ``torch.nn.functional.scaled_dot_product_attention`` plus the weights;
* :func:`causal_mask`, :func:`padding_mask`: boolean masks, True = may attend / real token;
* :class:`MultiHeadSelfAttention`: h heads of scaled dot-product attention side by side, with the
  parameter layout of BERT (separate query, key, value and output projections);
* :func:`sinusoidal_positions`: the fixed position code of "Attention Is All You Need".

The Transformer encoder block built from these lives in :mod:`mmtutor.transformer`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _check_float(name: str, x: object, min_ndim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    return x


def _check_bool_mask(name: str, mask: object, device: torch.device) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a bool torch.Tensor (True = may attend), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must have dtype torch.bool (True = may attend), got {mask.dtype}")
    if mask.device != device:
        raise ValueError(f"{name} is on {mask.device} but the scores are on {device}; move it with .to({device})")
    return mask


def _check_like_weight(x: torch.Tensor, weight: torch.Tensor) -> None:
    """``x`` must have the dtype and the device of the module's parameters."""
    if x.dtype != weight.dtype:
        raise TypeError(f"x has dtype {x.dtype} but the weights are {weight.dtype}; convert one of them "
                        f"(x.to({weight.dtype}) or module.to({x.dtype}))")
    if x.device != weight.device:
        raise ValueError(f"x is on {x.device} but the weights are on {weight.device}")


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` along ``dim`` over the positions where ``mask`` is True.

    $$a_i = \\frac{m_i e^{s_i}}{\\sum_j m_j e^{s_j}}$$

    Masked positions get weight exactly 0 (their score becomes ``-inf``). A slice with no True
    entry at all gets weights 0 everywhere (not NaN, and no NaN gradient either), which is what
    ``torch.nn.functional.scaled_dot_product_attention`` returns for such a row.

    Args:
        scores: float tensor of any shape.
        mask: bool tensor broadcastable to ``scores.shape``; True = keep. ``None`` keeps everything.
    """
    _check_float("scores", scores, 1)
    if mask is None:
        return torch.softmax(scores, dim=dim)
    _check_bool_mask("mask", mask, scores.device)
    try:
        fits = torch.broadcast_shapes(mask.shape, scores.shape) == scores.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' "
                         f"shape {tuple(scores.shape)}")
    mask = mask.reshape((1,) * (scores.ndim - mask.ndim) + tuple(mask.shape))  # same rank, so `dim` agrees
    empty = ~mask.any(dim=dim, keepdim=True)  # slices with nothing to attend to (on the small mask)
    # -inf gives exactly 0 after the softmax; an empty slice keeps its scores (finite, no NaN) ...
    weights = torch.softmax(scores.masked_fill(~(mask | empty), float("-inf")), dim=dim)
    if bool(empty.any()):  # ... and is set to 0 afterwards (its gradient is 0 too)
        weights = weights.masked_fill(empty, 0.0)
    return weights


class SelfAttention(nn.Module):
    """The seed's additive attention pooling: a weighted average of the states, weights learned.

    $$u_t = \\tanh(W h_t + b_W), \\qquad e_t = V u_t + b_V, \\qquad
      a = \\mathrm{softmax}_t(e), \\qquad s = \\sum_t a_t h_t$$

    ``.W = nn.Linear(H, H)`` and ``.V = nn.Linear(H, 1)`` as in the seed. ``forward(x, mask=None,
    return_weights=False)`` takes states ``x (B, T, H)`` and an optional padding mask ``(B, T)``
    (bool, True = real token; padded positions get weight exactly 0) and returns ``s (B, H)``, or
    ``(s, a)`` with ``a (B, T)`` when ``return_weights=True``.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size must be an int >= 1, got {hidden_size!r}")
        self.hidden_size = hidden_size
        self.W = nn.Linear(hidden_size, hidden_size)
        self.V = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        _check_float("x", x, 3)
        if x.ndim != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"x must have shape (B, T, {self.hidden_size}), got {tuple(x.shape)}")
        _check_like_weight(x, self.W.weight)
        if mask is not None:
            _check_bool_mask("mask", mask, x.device)
            if tuple(mask.shape) != tuple(x.shape[:2]):
                raise ValueError(f"mask must have shape (B, T) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
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
    """Every query takes a weighted average of the values; the weights compare it with every key.

    $$\\mathrm{Attention}(Q, K, V) = \\mathrm{softmax}\\!\\left(\\frac{Q K^\\top}{\\sqrt{d_k}}\\right) V$$

    Args:
        q: queries ``(..., T_q, d_k)``; k: keys ``(..., T_k, d_k)``; v: values ``(..., T_k, d_v)``.
            Leading dimensions broadcast.
        mask: bool, broadcastable to ``(..., T_q, T_k)``; True = this query may attend to this key.
        scale: multiplies the scores; ``None`` means ``1 / sqrt(d_k)`` (a temperature of ``sqrt(d_k)``).

    Returns:
        ``(out (..., T_q, d_v), weights (..., T_q, T_k))``. ``out`` equals
        ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)``; each row of
        ``weights`` sums to 1 (0 for a query that may attend to nothing).
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        _check_float(name, x, 2)
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last size d_k, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length T_k, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError as err:
        raise ValueError(f"the leading dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and "
                         f"v {tuple(v.shape)} do not broadcast") from err
    if mask is not None:
        _check_bool_mask("mask", mask, q.device)
        want = (*batch, q.shape[-2], k.shape[-2])
        try:
            torch.broadcast_shapes(mask.shape, want)
        except RuntimeError as err:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to (..., T_q, T_k) = "
                             f"{want}") from err
    d_k = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(d_k)
    scores = (q * scale) @ k.transpose(-2, -1)  # (..., T_q, T_k); scaling q costs T*d, not T*T
    weights = masked_softmax(scores, mask, dim=-1)  # (..., T_q, T_k)
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(T, T)`` bool, True on and below the diagonal: position i may attend to positions j <= i."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an int >= 1, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, T: int | None = None) -> torch.Tensor:
    """``(B, T)`` bool, True at the first ``lengths[b]`` positions of row b (the real tokens)."""
    if not isinstance(lengths, torch.Tensor) or lengths.ndim != 1 or lengths.is_floating_point():
        raise TypeError(f"lengths must be a 1-D integer tensor, got {getattr(lengths, 'dtype', type(lengths))} "
                        f"of shape {tuple(getattr(lengths, 'shape', ()))}")
    longest = int(lengths.max()) if len(lengths) else 0
    T = longest if T is None else T
    if len(lengths) and (int(lengths.min()) < 0 or longest > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got min {int(lengths.min())}, max {longest}")
    return torch.arange(T, device=lengths.device) < lengths.unsqueeze(1)  # (B, T)


class MultiHeadSelfAttention(nn.Module):
    """``n_heads`` attentions in parallel, each on its own ``d_k = d_model / n_heads`` slice.

    $$\\mathrm{head}_i = \\mathrm{Attention}(X W^Q_i, X W^K_i, X W^V_i), \\qquad
      \\mathrm{MHA}(X) = [\\mathrm{head}_1; \\dots; \\mathrm{head}_h] W^O$$

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
    Returns ``y (B, T, D)``, and the per-head weights ``(B, n_heads, T, T)`` if asked.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("n_heads", n_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        _check_float("x", x, 3)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, {self.d_model}), got {tuple(x.shape)}")
        _check_like_weight(x, self.q_proj.weight)
        B, T, D = x.shape
        allowed = None
        if mask is not None:
            _check_bool_mask("mask", mask, x.device)
            if tuple(mask.shape) != (B, T):
                raise ValueError(f"mask must have shape (B, T) = {(B, T)}, got {tuple(mask.shape)}")
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
        """Copy the weights of a ``nn.MultiheadAttention`` of the same size (packed in_proj) into ours."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"expected an nn.MultiheadAttention, got {type(mha).__name__}")
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
    """The fixed position code ``(T, d_model)`` of Vaswani et al. (2017), for an even ``d_model``:

    $$P_{t, 2i} = \\sin(t / \\mathrm{base}^{2i/d}), \\qquad P_{t, 2i+1} = \\cos(t / \\mathrm{base}^{2i/d})$$

    Every pair of columns is a clock at its own frequency, so ``P_{t+k}`` is a fixed rotation of ``P_t``.
    """
    for name, value in (("T", T), ("d_model", d_model)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if d_model % 2:
        raise ValueError(f"d_model must be even (sin and cos pairs), got {d_model}")
    t = torch.arange(T, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,) = 2i
    angle = t / base ** (i / d_model)  # (T, d/2)
    P = torch.empty(T, d_model, dtype=torch.float64)
    P[:, 0::2], P[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return P.float()
