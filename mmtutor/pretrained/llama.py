r"""Chapter 5: a Llama-style decoder (SmolLM2), built from chapter 3's attention and chapter 4's KV cache.

What changed between the 2017 Transformer and a 2024 small LLM, one piece at a time:

* :func:`rms_norm` / :class:`RMSNorm`: scale by the root mean square, no centring, no bias (Zhang & Sennrich);
* :func:`rope_angles`, :func:`apply_rope`: positions enter as rotations of query/key pairs (Su et al.),
  so a score depends on the offset between two tokens, not on where they sit;
* :class:`SwiGLU`: a gated feed-forward net, ``down(silu(gate x) * up x)`` (Shazeer);
* :class:`GroupedQueryAttention`: 9 query heads share 3 key/value heads (Ainslie et al.): the KV cache is
  3 times smaller;
* :class:`LlamaBlock`: pre-norm residuals, $x + f(\mathrm{norm}(x))$;
* :class:`Llama`: embedding, blocks, a final norm and an output layer tied to the embedding.

The model follows the cache protocol of :mod:`mmtutor.language_model`: ``model(ids, cache=None) -> logits``,
new tokens at positions ``cache.length ...``, layer ``i`` calls ``cache.update(i, k, v)``; so
``mmtutor.language_model.generate`` drives it. Prompts of different lengths share a batch when padded and
``attention_mask`` (as in transformers) marks the real tokens: no query attends to a pad, and RoPE counts
a token's position among its row's real tokens only. Parameter names mirror transformers'
``LlamaForCausalLM`` (see :mod:`mmtutor.pretrained.smollm2` for the table).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .._checks import bool_mask, broadcasts_to, float_tensor, has_shape, id_tensor, int_tensor, like, positive_int
from ..attention import scaled_dot_product_attention
from ..language_model import KVCache


@dataclass
class LlamaConfig:
    vocab_size: int = 49152         # byte-level BPE tokens (SmolLM2)
    context_length: int = 8192      # longest sequence the model was trained on
    d_model: int = 576              # width of every token vector
    n_layers: int = 30              # decoder blocks
    n_heads: int = 9                # query heads, head_dim = d_model / n_heads = 64
    n_kv_heads: int = 3             # key/value heads, each shared by n_heads / n_kv_heads = 3 query heads
    d_ff: int = 1536                # SwiGLU hidden width
    rope_base: float = 100000.0     # RoPE's base b: pair i turns by angle t / b^(2i/d) at position t
    eps: float = 1e-5               # RMSNorm epsilon
    tie_embeddings: bool = True     # output layer = embedding matrix (the file has no separate output.weight)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-5) -> Tensor:
    r"""$\mathrm{RMSNorm}(x) = \frac{x}{\sqrt{\frac1D \sum_j x_j^2 + \epsilon}} \odot g$ over the last axis.

    ``x (..., D)``, ``weight`` = $g$ ``(D,)``; unlike LayerNorm, no mean is subtracted and there is no bias.
    A ``weight`` of another size raises ``ValueError``.
    """
    float_tensor("weight", weight, "(D,)", D=float_tensor("x", x, "(..., D)").shape[-1])
    rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)  # (..., 1)
    return weight * (x * rms)


class RMSNorm(nn.Module):
    """:func:`rms_norm` with a learned gain ``weight (D,)`` (initialised to ones)."""

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(positive_int("d_model", d_model))), eps

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)


def rope_angles(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    r"""``cos, sin (..., T, head_dim)`` of the rotation angles $\theta_{t,i} = t\, b^{-2i/d}$ for ``positions (..., T)``
    (one row of positions, or one per sequence of a batch).

    Pair ``i`` (coordinates ``i`` and ``i + d/2``, transformers' layout) turns at frequency $b^{-2i/d}$:
    fast for the first pairs, slow for the last. Each angle appears twice, once per coordinate of its pair.
    ``positions`` must be non-negative integers and ``head_dim`` even (``ValueError``).
    """
    int_tensor("positions", positions, "(..., T)", low=0)
    if positive_int("head_dim", head_dim, minimum=2) % 2:
        raise ValueError(f"head_dim must be even (coordinates come in pairs), got {head_dim}")
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    theta = positions.float()[..., None] * inv_freq  # (..., T, d/2)
    theta = torch.cat([theta, theta], dim=-1)  # (..., T, d)
    return theta.cos(), theta.sin()


def rotate_half(x: Tensor) -> Tensor:
    """``(x_1, x_2) -> (-x_2, x_1)`` for the two halves of the last axis: a quarter turn of every pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    r"""Rotate every pair $(x_i, x_{i+d/2})$ of ``x (..., T, d)`` by its angle:

    $$\begin{pmatrix} x_i' \\ x_{i+d/2}' \end{pmatrix} =
      \begin{pmatrix} \cos\theta_{t,i} & -\sin\theta_{t,i} \\ \sin\theta_{t,i} & \cos\theta_{t,i} \end{pmatrix}
      \begin{pmatrix} x_i \\ x_{i+d/2} \end{pmatrix}$$

    so $q_s' \cdot k_t' = q_s^\top R(\theta_t - \theta_s) k_t$ depends on the offset $t - s$ only.
    ``cos, sin (T, d)`` (or ``(B, 1, T, d)``, one set per sequence) from :func:`rope_angles`; shapes that do not
    broadcast to ``x`` raise ``ValueError``.
    """
    float_tensor("x", x, "(..., d)")
    for name, c in (("cos", cos), ("sin", sin)):
        broadcasts_to(name, float_tensor(name, c), x.shape, "x's shape")
    return x * cos + rotate_half(x) * sin


class SwiGLU(nn.Module):
    r"""The gated feed-forward net: $\mathrm{FFN}(x) = W_{\text{down}}\,(\mathrm{silu}(W_{\text{gate}} x) \odot
    W_{\text{up}} x)$ with $\mathrm{silu}(z) = z\,\sigma(z)$; three bias-free ``nn.Linear``."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        like("x", float_tensor("x", x, "(..., D)", D=self.gate_proj.in_features), self.gate_proj.weight)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # (B, T, D)


def causal_mask_from(start: int, T: int, S: int, device: torch.device, real: Tensor | None = None) -> Tensor | None:
    """``(T, S)`` bool: query ``i`` (at position ``start + i``) may attend to key ``j`` iff ``j <= start + i``;
    ``None`` when every key is allowed (one new token after the cache). With ``real (B, S)`` (False at pad
    tokens): ``(B, 1, T, S)``, pads masked too (a pad's own query then attends to nothing: weights 0)."""
    causal = None if T == 1 else \
        torch.arange(S, device=device)[None, :] <= torch.arange(start, start + T, device=device)[:, None]
    if real is None:
        return causal
    real = real[:, None, None, :]  # (B, 1, 1, S)
    return real if causal is None else real & causal  # (B, 1, T, S)


class GroupedQueryAttention(nn.Module):
    r"""Causal self-attention with ``n_heads`` query heads and ``n_kv_heads`` shared key/value heads.

    $q = W_q x$, $k = W_k x$, $v = W_v x$; RoPE on $q, k$; query head $h$ attends with key/value head
    $\lfloor h / G \rfloor$, $G = $ ``n_heads / n_kv_heads``; $y = W_o [\mathrm{head}_1; \dots]$.
    The cache holds the ``n_kv_heads`` keys and values ``(B, n_kv_heads, T, d)``, not ``n_heads`` of them.
    Attention runs through chapter 3's :func:`mmtutor.attention.scaled_dot_product_attention`, with the queries
    of a group stacked along the query axis (no copy of the shared keys).
    """

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        if config.d_model % config.n_heads or config.n_heads % config.n_kv_heads:
            raise ValueError(f"d_model={config.d_model} must be divisible by n_heads={config.n_heads}, and "
                             f"n_heads by n_kv_heads={config.n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.d = config.n_heads, config.n_kv_heads, config.head_dim
        D, d = config.d_model, config.head_dim
        self.q_proj = nn.Linear(D, self.n_heads * d, bias=False)
        self.k_proj = nn.Linear(D, self.n_kv_heads * d, bias=False)
        self.v_proj = nn.Linear(D, self.n_kv_heads * d, bias=False)
        self.o_proj = nn.Linear(self.n_heads * d, D, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None = None, layer: int = 0,
                return_weights: bool = False, real: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        B, T, _ = like("x", float_tensor("x", x, "(B, T, D)", D=self.q_proj.in_features), self.q_proj.weight).shape
        H, Hkv, d = self.n_heads, self.n_kv_heads, self.d
        G = H // Hkv
        q = self.q_proj(x).view(B, T, H, d).transpose(1, 2)  # (B, H, T, d)
        k = self.k_proj(x).view(B, T, Hkv, d).transpose(1, 2)  # (B, Hkv, T, d)
        v = self.v_proj(x).view(B, T, Hkv, d).transpose(1, 2)  # (B, Hkv, T, d)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, Hkv, S, d): every position so far
        S = k.shape[-2]
        mask = causal_mask_from(S - T, T, S, x.device, real)  # (T, S), (B, 1, T, S) or None; new tokens: S - T ...
        # the G query heads of a group (h = kv * G + g, as transformers' repeat_kv orders them) take turns as
        # G * T query rows against the group's one set of keys: no copy of the shared keys and values
        q = q.reshape(B, Hkv, G * T, d)  # row g * T + t = query head kv * G + g at position t
        mask = None if mask is None else mask.repeat(*(1,) * (mask.ndim - 2), G, 1)  # (G * T, S) or (B, 1, G * T, S)
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, Hkv, G * T, d), (B, Hkv, G * T, S)
        y = self.o_proj(out.reshape(B, H, T, d).transpose(1, 2).reshape(B, T, H * d))  # (B, T, D)
        return (y, weights.reshape(B, H, T, S)) if return_weights else y


class LlamaBlock(nn.Module):
    r"""Pre-norm residual block: $x \leftarrow x + \mathrm{Attn}(\mathrm{RMSNorm}_1 x)$,
    $x \leftarrow x + \mathrm{SwiGLU}(\mathrm{RMSNorm}_2 x)$."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.d_model, config.eps)
        self.self_attn = GroupedQueryAttention(config)
        self.post_attention_layernorm = RMSNorm(config.d_model, config.eps)
        self.mlp = SwiGLU(config.d_model, config.d_ff)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None = None, layer: int = 0,
                return_weights: bool = False, real: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        a = self.self_attn(self.input_layernorm(x), cos, sin, cache, layer, return_weights, real)
        a, weights = a if return_weights else (a, None)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return (x, weights) if return_weights else x  # (B, T, D), (B, H, T, S)


class Llama(nn.Module):
    r"""The decoder: $x_0 = E[w]$, ``n_layers`` :class:`LlamaBlock`, $\mathrm{logits} = W_{\text{out}}\,
    \mathrm{RMSNorm}(x_L)$, with $W_{\text{out}} = E$ when ``tie_embeddings``.

    ``forward(ids (B, T), cache=None, return_weights=False, attention_mask=None, logits_to_keep=0)`` -> logits
    ``(B, T, vocab_size)`` (and the attention weights of every layer, each ``(B, n_heads, T, S)``).
    ``attention_mask (B, S)``, bool: True at the real tokens of all ``S`` slots so far (the cached ones and the
    ``T`` new ones), False at pads; a real token's position is the number of real tokens before it in its row,
    $p_{b,s} = \sum_{s' < s} m_{b,s'}$, and no query attends to a pad. (Pads only on the left would need no new
    positions, since RoPE scores depend on offsets only; pads after a shared prefix would stretch the offsets.)
    ``logits_to_keep``: the logits of the last that many positions only (0: all), as in transformers: a prompt
    of 150 tokens needs one row of logits, and the output layer (49,152 x 576 in SmolLM2) is a fifth of the
    model's work per token. Raises ``ValueError`` for an id outside ``[0, vocab_size)`` or for more than
    ``context_length`` positions (cache included).
    """

    supports_padding = True  # forward takes attention_mask= and logits_to_keep=: prompts of any lengths in a batch

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise TypeError(f"config must be a LlamaConfig, got {type(config).__name__}")
        for name in ("vocab_size", "context_length", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"):
            positive_int(f"config.{name}", getattr(config, name))
        self.config = config
        V, D = config.vocab_size, config.d_model
        self.embed_tokens = nn.Embedding(V, D, _weight=torch.empty(V, D))  # initialised below
        self.layers = nn.ModuleList(LlamaBlock(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(D, config.eps)
        self.lm_head = nn.Linear(D, V, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight  # one matrix, read twice
        if self.embed_tokens.weight.device.type != "meta":  # built on "meta" to be loaded: nothing to draw
            nn.init.normal_(self.embed_tokens.weight, std=0.02)  # GPT-2's initialisation of the table

    @property
    def context_length(self) -> int:
        return self.config.context_length

    def forward(self, ids: Tensor, cache: KVCache | None = None, return_weights: bool = False,
                attention_mask: Tensor | None = None, logits_to_keep: int = 0) -> Tensor | tuple[Tensor, list[Tensor]]:
        B, T = id_tensor("ids", ids, self.config.vocab_size, "(B, T)").shape
        positive_int("logits_to_keep", logits_to_keep, minimum=0)
        start = cache.length if cache is not None else 0
        if T == 0 or start + T > self.context_length:
            raise ValueError(f"{start} cached + {T} new positions must lie in [1, context_length="
                             f"{self.context_length}]")
        positions = torch.arange(start, start + T, device=ids.device)  # (T,) the new tokens' slots
        real = attention_mask
        if real is not None:
            has_shape("attention_mask", bool_mask("attention_mask", real, ids.device), "(B, S)", B=B, S=start + T)
            positions = (real.cumsum(-1) - 1).clamp(min=0)[:, start:]  # (B, T) real tokens before each one
        cos, sin = rope_angles(positions, self.config.head_dim, self.config.rope_base)  # (T, d) or (B, T, d)
        if real is not None:
            cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, d): one set of angles per sequence, every head
        x = self.embed_tokens(ids)  # (B, T, D)
        weights = []
        for i, block in enumerate(self.layers):
            x = block(x, cos, sin, cache, i, return_weights, real)
            if return_weights:
                x, w = x
                weights.append(w)  # (B, H, T, S)
        x = x[:, -logits_to_keep:] if logits_to_keep else x  # (B, T', D): generation reads the last logits only
        logits = self.lm_head(self.norm(x))  # (B, T', V)
        return (logits, weights) if return_weights else logits


def kv_cache_bytes(config: LlamaConfig, n_tokens: int, bytes_per_number: int = 4) -> int:
    r"""Bytes the KV cache holds after ``n_tokens``: $2 \cdot L \cdot H_{kv} \cdot d \cdot T$ numbers
    (keys and values, every layer)."""
    return 2 * config.n_layers * config.n_kv_heads * config.head_dim * positive_int("n_tokens", n_tokens) \
        * bytes_per_number


def parameter_count(model: nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
