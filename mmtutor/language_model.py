r"""Chapter 4: a language model, tokens in and text out.

* :class:`KVCache`: the keys and values of the positions seen so far, per attention layer;
* :func:`top_k_filter`, :func:`top_p_filter`, :func:`sample_next`: the next token from the logits (greedy,
  temperature, top-k, nucleus), the same filtering as ``transformers``' ``TopKLogitsWarper``/``TopPLogitsWarper``;
* :func:`generate`: prompt in, prompt plus new tokens out, with or without the cache (same tokens);
* :class:`GPTConfig`, :class:`GPT`: a decoder-only Transformer (Radford et al. 2018, 2019) built from chapter 3's
  attention.

The contract every decoder of the workbook follows (chapter 4's ``GPT``, chapter 5's Llama), so that one
``generate`` drives them all:

* ``model(ids (B, T), cache=None) -> logits (B, T, V)``;
* with a :class:`KVCache`, the ``T`` new tokens sit at positions ``cache.length ... cache.length + T - 1``,
  and every attention layer ``i`` calls ``k, v = cache.update(i, k, v)`` to attend over all positions so far;
* ``model.context_length``: the longest sequence the model may see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._checks import float_tensor, id_tensor, number, positive_int
from .attention import MultiHeadSelfAttention, scaled_dot_product_attention


class KVCache:
    r"""The keys and values of every position seen so far, one ``(k, v)`` pair per attention layer.

    Without it, generating token ``t + 1`` recomputes the keys and values of all ``t`` earlier tokens in
    every layer; with it, each step computes them for the one new token and appends.
    ``k``, ``v``: ``(B, heads, T, d_k)``; :meth:`update` concatenates along the time axis (``dim=-2``).
    """

    def __init__(self) -> None:
        self.layers: list[tuple[Tensor, Tensor]] = []

    @property
    def length(self) -> int:
        """Positions cached so far (0 for an empty cache)."""
        return self.layers[0][0].shape[-2] if self.layers else 0

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new ``k, v (B, heads, T_new, d_k)`` of ``layer``; return all of them ``(B, heads, T, d_k)``."""
        if layer == len(self.layers):  # the first call of this layer
            self.layers.append((k, v))
        elif 0 <= layer < len(self.layers):
            past_k, past_v = self.layers[layer]
            self.layers[layer] = (torch.cat([past_k, k], dim=-2), torch.cat([past_v, v], dim=-2))
        else:
            raise ValueError(f"layer {layer} updated before layers 0..{layer - 1} of this step "
                             f"(the cache holds {len(self.layers)} layers)")
        return self.layers[layer]

    def expand(self, batch: int) -> KVCache:
        """One cached sequence shared by ``batch`` sequences (a prompt prefix computed once): every
        ``(1, heads, T, d_k)`` becomes a view ``(batch, heads, T, d_k)``, copied only by the next update."""
        if any(k.shape[0] != 1 for k, _ in self.layers):
            raise ValueError(f"only a cache of one sequence can be shared, got batch {self.layers[0][0].shape[0]}")
        self.layers = [(k.expand(positive_int("batch", batch), -1, -1, -1), v.expand(batch, -1, -1, -1))
                       for k, v in self.layers]
        return self


# ----------------------------------------------------------------------------- choosing the next token
def _check_sampling(temperature: object, top_k: object, top_p: object) -> None:
    number("temperature", temperature, low=0.0)
    if top_k is not None:
        positive_int("top_k", top_k)
    if top_p is not None:
        number("top_p", top_p, low=0.0, high=1.0, low_open=True)


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    r"""Keep the ``k`` largest logits of each row (and any tied with the ``k``-th), set the rest to ``-inf``.

    $$\tilde z_v = z_v \text{ if } z_v \ge z_{(k)}, \text{ else } -\infty$$

    with $z_{(k)}$ the ``k``-th largest logit of the row. ``logits (..., V)``; ``k > V`` keeps everything.
    """
    float_tensor("logits", logits, min_ndim=1)
    positive_int("top_k", k)
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    r"""Nucleus filtering (Holtzman et al. 2020): keep the smallest set of most likely tokens whose probability
    reaches ``p`` (always at least the most likely one), set the rest to ``-inf``.

    With the probabilities sorted in decreasing order, $\pi_{(1)} \ge \pi_{(2)} \ge \dots$, token $(i)$ stays
    when the mass before it is still short of $p$: $\sum_{j < i} \pi_{(j)} < p$.
    ``logits (..., V)``; ``p`` in ``(0, 1]``.
    """
    float_tensor("logits", logits, min_ndim=1)
    number("top_p", p, low=0.0, high=1.0, low_open=True)
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    pi = torch.softmax(sorted_logits, dim=-1)  # (..., V), decreasing
    before = pi.cumsum(dim=-1) - pi  # (..., V): the mass of the more likely tokens
    drop_sorted = before >= p
    drop_sorted[..., 0] = False  # the most likely token always stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    r"""One next token per row of ``logits (B, V)``: ``LongTensor (B,)`` on the logits' device.

    $$\pi = \mathrm{softmax}(\tilde z / \tau), \qquad x_{\text{next}} \sim \pi$$

    where $\tilde z$ is the logits after :func:`top_k_filter` then :func:`top_p_filter` (applied after the
    temperature, in the order ``transformers`` uses). ``temperature=0`` or ``top_k=1`` is greedy
    (the argmax, the first one on ties). The draw is an inverse CDF, done on the CPU in float64 with one
    uniform per row from ``generator`` (a CPU ``torch.Generator``; ``None``: torch's global one), so a seed
    gives the same tokens whatever device computed the logits.

    Raises ``ValueError`` for logits that are not ``(B, V)``, a negative temperature, ``top_k < 1``, ``top_p``
    outside ``(0, 1]``, or a generator that is not on the CPU.
    """
    float_tensor("logits", logits, "(B, V)")
    _check_sampling(temperature, top_k, top_p)
    if generator is not None and (not isinstance(generator, torch.Generator) or generator.device.type != "cpu"):
        raise ValueError(f"generator must be a CPU torch.Generator (so CPU and GPU draw alike), got {generator!r}")
    z = logits.detach().to("cpu", torch.float64)  # (B, V): one place and precision for every device
    if temperature == 0 or top_k == 1:
        return z.argmax(dim=-1).to(logits.device)
    z = z / temperature
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None and top_p < 1:
        z = top_p_filter(z, top_p)
    cdf = torch.softmax(z, dim=-1).cumsum(dim=-1)  # (B, V)
    u = torch.rand(z.shape[0], 1, generator=generator, dtype=torch.float64)  # (B, 1), uniform in [0, 1)
    # the first token whose cumulative probability exceeds u: token v is drawn with probability pi_v
    choice = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=z.shape[-1] - 1)  # (B, 1)
    return choice.squeeze(-1).to(logits.device)


@torch.no_grad()
def generate(model: nn.Module, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, generator: torch.Generator | None = None, use_cache: bool = True) -> Tensor:
    r"""Extend the prompt ``ids (B, T)`` by ``max_new_tokens`` tokens, one at a time: ``(B, T + max_new_tokens)``.

    $$x_{t+1} \sim p_\theta(\cdot \mid x_{\le t}), \qquad t = T, \dots, T + n - 1$$

    Works for any decoder that follows this module's cache protocol (``model(ids, cache=None)``,
    ``model.context_length``). With ``use_cache`` the prompt goes through the model once, with a fresh
    :class:`KVCache`, then each step feeds only the newest token; without it each step feeds the whole
    sequence so far. Both give the same tokens. Sampling as in :func:`sample_next`. The model is put in
    eval mode while generating and back in its mode afterwards.

    Raises ``ValueError`` if ``T + max_new_tokens`` exceeds ``model.context_length``, and for bad settings.
    """
    if not isinstance(model, nn.Module) or not hasattr(model, "context_length"):
        raise TypeError(f"model must be an nn.Module with a context_length (the cache protocol), got "
                        f"{type(model).__name__}")
    id_tensor("ids", ids, torch.iinfo(torch.long).max, "(B, T)")
    positive_int("max_new_tokens", max_new_tokens, minimum=0)
    _check_sampling(temperature, top_k, top_p)
    if ids.shape[1] < 1:
        raise ValueError("ids must hold a prompt of at least one token, got T = 0")
    if ids.shape[1] + max_new_tokens > model.context_length:
        raise ValueError(f"the prompt's {ids.shape[1]} tokens plus max_new_tokens={max_new_tokens} exceed the "
                         f"model's context_length={model.context_length}")
    if max_new_tokens == 0:
        return ids.clone()
    was_training = model.training
    model.eval()
    try:
        cache = KVCache() if use_cache else None
        out = ids
        logits = model(ids, cache=cache)[:, -1]  # (B, V): the prediction after the prompt
        for step in range(max_new_tokens):
            token = sample_next(logits, temperature, top_k, top_p, generator).to(ids.device)  # (B,)
            out = torch.cat([out, token[:, None]], dim=1)  # (B, T + step + 1)
            if step + 1 < max_new_tokens:
                logits = (model(token[:, None], cache=cache) if use_cache else model(out))[:, -1]  # (B, V)
    finally:
        model.train(was_training)
    return out


# ----------------------------------------------------------------------------- the model
@dataclass
class GPTConfig:
    vocab_size: int            # token ids lie in [0, vocab_size) (256 for raw bytes)
    context_length: int = 128  # the longest sequence the model sees (size of the position table)
    d_model: int = 128         # width of every token vector
    n_heads: int = 4           # attention heads per block; each works on d_model / n_heads dimensions
    n_layers: int = 4          # decoder blocks
    d_ff: int | None = None    # feed-forward width; None = 4 * d_model (GPT-2)
    dropout: float = 0.0       # after the embeddings, the attention and the feed-forward net (0 = off)
    eps: float = 1e-5          # layer-norm epsilon


class CausalSelfAttention(MultiHeadSelfAttention):
    r"""Chapter 3's multi-head self-attention, causal, with a :class:`KVCache`.

    $$\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{Q_i K_i^\top}{\sqrt{d_k}} + M\right) V_i, \qquad
      M_{st} = 0 \text{ if } t \le s \text{ else } -\infty$$

    The new tokens sit at positions ``P ... P + T - 1`` with ``P = cache.length``; their keys and values are
    appended to the cache of this layer (number ``layer``) and the queries attend to all ``P + T`` keys, each
    up to its own position. ``forward(x (B, T, D), cache=None) -> (B, T, D)``.
    """

    def __init__(self, d_model: int, n_heads: int, layer: int) -> None:
        super().__init__(d_model, n_heads)
        self.layer = layer

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:  # type: ignore[override]
        float_tensor("x", x, "(B, T, D)")
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, {self.d_model}), got {tuple(x.shape)}")
        B, T, D = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(B, T, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, h, P + T, d_k): the past and the new positions
        T_k = k.shape[-2]
        # query s (at position T_k - T + s) may attend to keys t <= T_k - T + s; one new token sees everything
        allowed = None if T == 1 else torch.ones(T, T_k, dtype=torch.bool, device=x.device).tril(T_k - T)
        heads, _ = scaled_dot_product_attention(q, k, v, allowed)  # (B, h, T, d_k)
        return self.out_proj(heads.transpose(1, 2).reshape(B, T, D))  # (B, T, D)


class DecoderBlock(nn.Module):
    r"""A pre-norm decoder block (GPT-2): $X' = X + \mathrm{Attn}(\mathrm{LN}_1 X)$,
    $Y = X' + W_2\,\mathrm{GELU}(W_1 \mathrm{LN}_2 X' + b_1) + b_2$."""

    def __init__(self, config: GPTConfig, layer: int) -> None:
        super().__init__()
        D, d_ff = config.d_model, config.d_ff or 4 * config.d_model
        self.norm1 = nn.LayerNorm(D, eps=config.eps)
        self.attn = CausalSelfAttention(D, config.n_heads, layer)
        self.norm2 = nn.LayerNorm(D, eps=config.eps)
        self.linear1 = nn.Linear(D, d_ff)
        self.linear2 = nn.Linear(d_ff, D)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        x = x + self.dropout(self.attn(self.norm1(x), cache))  # (B, T, D)
        return x + self.dropout(self.linear2(F.gelu(self.linear1(self.norm2(x)))))  # (B, T, D)


class GPT(nn.Module):
    r"""A decoder-only Transformer language model: ``forward(ids (B, T), cache=None) -> logits (B, T, V)``.

    $$h^{(0)}_t = E_{x_t} + P_t, \qquad h^{(\ell)} = \mathrm{Block}_\ell(h^{(\ell-1)}), \qquad
      \mathrm{logits}_t = \mathrm{LN}(h^{(L)}_t)\, E^\top$$

    Token table ``E`` (``V x D``), learned positions ``P`` (``context_length x D``), ``n_layers`` causal pre-norm
    blocks, a final layer norm, and an output layer that shares ``E`` (tied weights, Press and Wolf 2017):
    ``logits[b, t]`` scores every token as the one after ``ids[b, :t + 1]``. Weights start as in GPT-2
    (normal, std 0.02; the projections into the residual stream scaled by ``1/sqrt(2 n_layers)``).

    Raises ``ValueError`` for bad sizes, ids outside ``[0, V)`` or a sequence longer than ``context_length``.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        for name in ("vocab_size", "context_length", "d_model", "n_heads", "n_layers"):
            positive_int(name, getattr(config, name))
        if config.d_ff is not None:
            positive_int("d_ff", config.d_ff)
        if config.d_model % config.n_heads:
            raise ValueError(f"d_model={config.d_model} must be divisible by n_heads={config.n_heads}")
        number("dropout", config.dropout, 0.0, 1.0, high_open=True)
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)  # E (V, D)
        self.position_embedding = nn.Embedding(config.context_length, config.d_model)  # P (context_length, D)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(DecoderBlock(config, i) for i in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model, eps=config.eps)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.token_embedding.weight  # tied: one table to read tokens in and write them out
        self.apply(self._init_weights)
        for block in self.blocks:
            for proj in (block.attn.out_proj, block.linear2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def context_length(self) -> int:
        return self.config.context_length

    def forward(self, ids: Tensor, cache: KVCache | None = None) -> Tensor:
        id_tensor("ids", ids, self.config.vocab_size, "(B, T)")
        B, T = ids.shape
        start = 0 if cache is None else cache.length
        if T < 1 or start + T > self.context_length:
            raise ValueError(f"positions {start}..{start + T - 1} do not fit the context_length "
                             f"{self.context_length} (ids of shape {tuple(ids.shape)}, {start} cached)")
        positions = torch.arange(start, start + T, device=ids.device)  # (T,)
        x = self.dropout(self.token_embedding(ids) + self.position_embedding(positions))  # (B, T, D)
        for block in self.blocks:
            x = block(x, cache)  # (B, T, D)
        return self.head(self.norm(x))  # (B, T, V)

    @torch.no_grad()
    def load_from_gpt2(self, hf_model: nn.Module) -> GPT:
        """Copy the weights of a ``transformers`` ``GPT2LMHeadModel`` of the same sizes into this model.

        GPT-2 keeps q, k, v in one ``c_attn`` and stores its ``Conv1D`` weights as ``(in, out)``, the transpose
        of ``nn.Linear``'s; it must use the exact GELU (``activation_function="gelu"``) to match ours.
        """
        hf = getattr(hf_model, "transformer", None)
        if hf is None or not hasattr(hf, "h") or len(hf.h) != len(self.blocks):
            raise ValueError(f"expected a GPT2LMHeadModel with {len(self.blocks)} blocks, "
                             f"got {type(hf_model).__name__}")
        if tuple(hf.wte.weight.shape) != tuple(self.token_embedding.weight.shape):
            raise ValueError(f"token tables differ: {tuple(hf.wte.weight.shape)} vs "
                             f"{tuple(self.token_embedding.weight.shape)}")
        self.token_embedding.weight.copy_(hf.wte.weight)
        self.position_embedding.weight.copy_(hf.wpe.weight[:self.context_length])
        for ours, theirs in zip(self.blocks, hf.h, strict=True):
            for proj, w, b in zip((ours.attn.q_proj, ours.attn.k_proj, ours.attn.v_proj),
                                  theirs.attn.c_attn.weight.T.chunk(3), theirs.attn.c_attn.bias.chunk(3), strict=True):
                proj.weight.copy_(w), proj.bias.copy_(b)
            for linear, conv in ((ours.attn.out_proj, theirs.attn.c_proj), (ours.linear1, theirs.mlp.c_fc),
                                 (ours.linear2, theirs.mlp.c_proj)):
                linear.weight.copy_(conv.weight.T), linear.bias.copy_(conv.bias)
            ours.norm1.load_state_dict(theirs.ln_1.state_dict())
            ours.norm2.load_state_dict(theirs.ln_2.state_dict())
        self.norm.load_state_dict(hf.ln_f.state_dict())
        return self
