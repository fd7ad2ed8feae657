r"""Chapter 3, part 2: the Transformer encoder block and a sentence encoder built from attention alone.

* :class:`BlockConfig`, :class:`TransformerEncoderBlock`: multi-head self-attention and a
  feed-forward net, each wrapped in a residual connection and a layer norm (post-LN as in
  Vaswani et al. 2017 and BERT, or pre-LN). Its parameter names are documented below so that a
  later chapter can load pretrained BERT-style weights into it name by name.
* :class:`EncoderConfig`, :class:`TransformerEncoder`: embeddings + positions + blocks + a pooling: one vector
  per sentence. The encoder's config holds the blocks' config and passes it down whole.

The chapter's task models (an LSTM classifier with three poolings, the Transformer on chapter 2's side
question) live in :mod:`mmtutor.attention_tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import float_tensor, id_tensor, instance, int_tensor, number, one_of, positive_int
from .attention import MultiHeadSelfAttention, SelfAttention, masked_mean, padding_mask, sinusoidal_positions


@dataclass(frozen=True)
class BlockConfig:
    """The sizes and choices of one encoder block; checked when made (``ValueError`` / ``TypeError``)."""

    d_model: int = 64          # width of every token vector
    n_heads: int = 4           # attention heads; each works on d_k = d_model / n_heads dimensions
    d_ff: int = 256            # hidden width of the feed-forward net (4 x d_model, as in the paper)
    activation: str = "gelu"   # "gelu" (BERT, exact erf form) or "relu" (the 2017 paper)
    norm_first: bool = False   # False: post-LN (paper, BERT); True: pre-LN (GPT-2), easier to train deep
    eps: float = 1e-5          # layer-norm epsilon (BERT checkpoints use 1e-12)
    dropout: float = 0.0       # after attention, inside and after the feed-forward net (0 = off)

    def __post_init__(self) -> None:
        if positive_int("d_model", self.d_model) % positive_int("n_heads", self.n_heads):
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        positive_int("d_ff", self.d_ff)
        one_of("activation", self.activation, ("gelu", "relu"))
        number("eps", self.eps, 0.0, low_open=True)
        number("dropout", self.dropout, 0.0, 1.0, high_open=True)


class TransformerEncoderBlock(nn.Module):
    r"""One encoder block. With post-LN (``norm_first=False``):

    $$X' = \mathrm{LN}_1(X + \mathrm{MHA}(X)), \qquad Y = \mathrm{LN}_2(X' + W_2\,\phi(W_1 X' + b_1) + b_2)$$

    with pre-LN: $X' = X + \mathrm{MHA}(\mathrm{LN}_1 X)$, $Y = X' + \mathrm{FFN}(\mathrm{LN}_2 X')$.

    Parameters (every ``nn.Linear`` stores ``weight (out, in)`` and ``bias (out,)``):

    ==================  ==============================  ================================
    ours                ``nn.TransformerEncoderLayer``   BERT layer (Hugging Face)
    ==================  ==============================  ================================
    ``attn.q_proj``     ``self_attn.in_proj_*[:D]``      ``attention.self.query``
    ``attn.k_proj``     ``self_attn.in_proj_*[D:2D]``    ``attention.self.key``
    ``attn.v_proj``     ``self_attn.in_proj_*[2D:]``     ``attention.self.value``
    ``attn.out_proj``   ``self_attn.out_proj``           ``attention.output.dense``
    ``norm1``           ``norm1``                        ``attention.output.LayerNorm``
    ``linear1``         ``linear1``  (D -> d_ff)         ``intermediate.dense``
    ``linear2``         ``linear2``  (d_ff -> D)         ``output.dense``
    ``norm2``           ``norm2``                        ``output.LayerNorm``
    ==================  ==============================  ================================

    ``forward(x (B, T, D), mask=None, return_weights=False)``; ``mask (B, T)`` bool, True = real
    token. Returns ``(B, T, D)``, and the attention weights ``(B, n_heads, T, T)`` if asked. A config that is
    not a :class:`BlockConfig` raises ``TypeError``; bad inputs raise as in
    :class:`~mmtutor.attention.MultiHeadSelfAttention`.
    """

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.config = instance("config", config, BlockConfig)
        D = config.d_model
        self.attn = MultiHeadSelfAttention(D, config.n_heads)
        self.norm1 = nn.LayerNorm(D, eps=config.eps)
        self.linear1 = nn.Linear(D, config.d_ff)
        self.linear2 = nn.Linear(config.d_ff, D)
        self.norm2 = nn.LayerNorm(D, eps=config.eps)
        self.dropout = nn.Dropout(config.dropout)

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        phi = F.gelu if self.config.activation == "gelu" else F.relu
        return self.dropout(self.linear2(self.dropout(phi(self.linear1(x)))))  # (B, T, D)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        float_tensor("x", x, min_ndim=3)  # the attention checks the rest (shape, mask)
        if self.config.norm_first:
            a, weights = self.attn(self.norm1(x), mask, return_weights=True)
            x = x + self.dropout(a)
            x = x + self._ffn(self.norm2(x))
        else:
            a, weights = self.attn(x, mask, return_weights=True)
            x = self.norm1(x + self.dropout(a))
            x = self.norm2(x + self._ffn(x))
        return (x, weights) if return_weights else x  # (B, T, D), (B, h, T, T)

    @torch.no_grad()
    def load_from_torch(self, layer: nn.TransformerEncoderLayer) -> TransformerEncoderBlock:
        """Copy the weights of a ``nn.TransformerEncoderLayer`` (same sizes) into this block; another module
        raises ``TypeError``, other sizes ``ValueError``."""
        instance("layer", layer, nn.TransformerEncoderLayer, "an nn.TransformerEncoderLayer")
        self.attn.load_from_torch(layer.self_attn)
        for name in ("norm1", "linear1", "linear2", "norm2"):
            getattr(self, name).load_state_dict(getattr(layer, name).state_dict())
        return self


def _default_block() -> BlockConfig:
    return BlockConfig(d_model=32, n_heads=4, d_ff=64)  # small: the chapter's sentences have 16 words at most


@dataclass(frozen=True)
class EncoderConfig:
    """A sentence encoder: its own sizes and choices, and the config of each of its blocks (passed down whole)."""

    vocab_size: int            # word ids lie in [0, vocab_size); id 0 is padding
    block: BlockConfig = field(default_factory=_default_block)  # every block; block.d_model is the word width
    n_layers: int = 1          # encoder blocks
    max_len: int = 64          # longest sequence (size of the position table)
    positions: str = "sinusoidal"  # "sinusoidal" (fixed), "learned" (a trained table) or "none"
    pooling: str = "attention"  # "attention" (the original write-up's SelfAttention) or "mean" of the real tokens

    def __post_init__(self) -> None:
        positive_int("vocab_size", self.vocab_size)
        instance("block", self.block, BlockConfig)
        positive_int("n_layers", self.n_layers)
        positive_int("max_len", self.max_len)
        one_of("positions", self.positions, ("sinusoidal", "learned", "none"))
        one_of("pooling", self.pooling, ("attention", "mean"))


class TransformerEncoder(nn.Module):
    r"""A sentence vector from attention alone: $x_t = E[w_t] + P_t$, ``n_layers`` blocks, one pooling.

    ``forward(ids (B, T), lengths (B,))`` -> sentence vectors ``(B, d_model)``;
    ``encode(ids, lengths, return_weights=False)`` -> token states ``(B, T, D)`` and the padding mask
    ``(B, T)`` (and the attention weights of every block, each ``(B, n_heads, T, T)``). Ids out of range,
    lengths of the wrong shape and sequences longer than ``max_len`` raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = instance("config", config, EncoderConfig)
        D = config.block.d_model
        self.embed = nn.Embedding(config.vocab_size, D, padding_idx=0)
        if config.positions == "learned":
            self.pos = nn.Parameter(torch.randn(config.max_len, D) * 0.1)  # (max_len, D)
        elif config.positions == "sinusoidal":
            self.register_buffer("pos", sinusoidal_positions(config.max_len, D))  # (max_len, D)
        else:
            self.register_buffer("pos", torch.zeros(config.max_len, D))
        self.blocks = nn.ModuleList(TransformerEncoderBlock(config.block) for _ in range(config.n_layers))
        self.pool = SelfAttention(D) if config.pooling == "attention" else None

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, return_weights: bool = False) -> tuple:
        B, T = id_tensor("ids", ids, self.config.vocab_size, "(B, T)").shape
        int_tensor("lengths", lengths, "(B,)", B=B)
        if T > self.config.max_len:
            raise ValueError(f"sequences of {T} tokens exceed max_len={self.config.max_len}")
        mask = padding_mask(lengths.to(ids.device), T)  # (B, T)
        x = self.embed(ids) + self.pos[:T]  # (B, T, D)
        weights = []
        for block in self.blocks:
            x, w = block(x, mask, return_weights=True)
            weights.append(w)  # (B, h, T, T)
        return (x, mask, weights) if return_weights else (x, mask)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, mask = self.encode(ids, lengths)
        return self.pool(x, mask) if self.pool is not None else masked_mean(x, mask)  # (B, D)
