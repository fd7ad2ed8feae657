"""Chapter 3, part 2: the Transformer encoder block and small sequence classifiers built on attention.

* :class:`BlockConfig`, :class:`TransformerEncoderBlock`: multi-head self-attention and a
  feed-forward net, each wrapped in a residual connection and a layer norm (post-LN as in
  Vaswani et al. 2017 and BERT, or pre-LN). Its parameter names are documented below so that a
  later chapter can load pretrained BERT-style weights into it name by name.
* :class:`TransformerEncoder`: embeddings + positions + blocks + a pooling: one vector per sentence.
* :class:`RecurrentClassifier`: embeddings + the chapter 2 LSTM (``ContextEncoding``) + a pooling
  (the seed's attention pooling, the mean of the states, or the last state) + a linear head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .attention import MultiHeadSelfAttention, SelfAttention, _check_float, padding_mask, sinusoidal_positions
from .context import ContextEncoding


@dataclass
class BlockConfig:
    d_model: int = 64          # width of every token vector
    n_heads: int = 4           # attention heads; each works on d_k = d_model / n_heads dimensions
    d_ff: int = 256            # hidden width of the feed-forward net (4 x d_model, as in the paper)
    activation: str = "gelu"   # "gelu" (BERT, exact erf form) or "relu" (the 2017 paper)
    norm_first: bool = False   # False: post-LN (paper, BERT); True: pre-LN (GPT-2), easier to train deep
    eps: float = 1e-5          # layer-norm epsilon (BERT checkpoints use 1e-12)
    dropout: float = 0.0       # after attention, inside and after the feed-forward net (0 = off)


class TransformerEncoderBlock(nn.Module):
    """One encoder block. With post-LN (``norm_first=False``):

    $$X' = \\mathrm{LN}_1(X + \\mathrm{MHA}(X)), \\qquad Y = \\mathrm{LN}_2(X' + W_2\\,\\phi(W_1 X' + b_1) + b_2)$$

    with pre-LN: $X' = X + \\mathrm{MHA}(\\mathrm{LN}_1 X)$, $Y = X' + \\mathrm{FFN}(\\mathrm{LN}_2 X')$.

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
    token. Returns ``(B, T, D)``, and the attention weights ``(B, n_heads, T, T)`` if asked.
    """

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        if not isinstance(config, BlockConfig):
            raise TypeError(f"config must be a BlockConfig, got {type(config).__name__}")
        if config.activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {config.activation!r}")
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {config.dropout}")
        self.config = config
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
        _check_float("x", x, 3)  # the attention checks the rest (shape, mask)
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
        """Copy the weights of a ``nn.TransformerEncoderLayer`` (same sizes) into this block."""
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(f"expected an nn.TransformerEncoderLayer, got {type(layer).__name__}")
        self.attn.load_from_torch(layer.self_attn)
        for name in ("norm1", "linear1", "linear2", "norm2"):
            getattr(self, name).load_state_dict(getattr(layer, name).state_dict())
        return self


def _check_positive(**sizes: object) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _check_ids(ids: object, lengths: object, vocab_size: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype != torch.long:
        raise TypeError(f"ids must be a LongTensor (B, T), got {getattr(ids, 'dtype', type(ids).__name__)} "
                        f"of shape {tuple(getattr(ids, 'shape', ()))}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}), got min {int(ids.min())}, max {int(ids.max())}")
    if not isinstance(lengths, torch.Tensor) or tuple(lengths.shape) != (ids.shape[0],):
        raise ValueError(f"lengths must be a tensor of shape ({ids.shape[0]},), "
                         f"got {tuple(getattr(lengths, 'shape', ())) or type(lengths).__name__}")


def _mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the states of the real tokens: ``(B, T, H)``, ``(B, T)`` -> ``(B, H)``."""
    m = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


@dataclass
class EncoderConfig:
    vocab_size: int            # word ids lie in [0, vocab_size); id 0 is padding
    d_model: int = 32          # width of word vectors and of every block
    n_heads: int = 4           # attention heads per block
    d_ff: int = 64             # feed-forward width
    n_layers: int = 1          # encoder blocks
    max_len: int = 64          # longest sequence (size of the position table)
    positions: str = "sinusoidal"  # "sinusoidal" (fixed), "learned" (a trained table) or "none"
    pooling: str = "attention"  # "attention" (the seed's SelfAttention) or "mean" of the real tokens
    norm_first: bool = False   # post-LN blocks (paper, BERT) or pre-LN (GPT-2); see BlockConfig


class TransformerEncoder(nn.Module):
    """A sentence vector from attention alone: $x_t = E[w_t] + P_t$, ``n_layers`` blocks, one pooling.

    ``forward(ids (B, T), lengths (B,))`` -> sentence vectors ``(B, d_model)``;
    ``encode(ids, lengths, return_weights=False)`` -> token states ``(B, T, D)`` and the padding mask
    ``(B, T)`` (and the attention weights of every block, each ``(B, n_heads, T, T)``).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise TypeError(f"config must be an EncoderConfig, got {type(config).__name__}")
        if config.positions not in ("sinusoidal", "learned", "none"):
            raise ValueError(f"positions must be 'sinusoidal', 'learned' or 'none', got {config.positions!r}")
        if config.pooling not in ("mean", "attention"):
            raise ValueError(f"pooling must be 'mean' or 'attention', got {config.pooling!r}")
        _check_positive(vocab_size=config.vocab_size, d_model=config.d_model, d_ff=config.d_ff,
                        n_layers=config.n_layers, max_len=config.max_len)
        self.config = config
        D = config.d_model
        self.embed = nn.Embedding(config.vocab_size, D, padding_idx=0)
        if config.positions == "learned":
            self.pos = nn.Parameter(torch.randn(config.max_len, D) * 0.1)  # (max_len, D)
        elif config.positions == "sinusoidal":
            self.register_buffer("pos", sinusoidal_positions(config.max_len, D))  # (max_len, D)
        else:
            self.register_buffer("pos", torch.zeros(config.max_len, D))
        block = BlockConfig(d_model=D, n_heads=config.n_heads, d_ff=config.d_ff, norm_first=config.norm_first)
        self.blocks = nn.ModuleList(TransformerEncoderBlock(block) for _ in range(config.n_layers))
        self.pool = SelfAttention(D) if config.pooling == "attention" else None

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, return_weights: bool = False) -> tuple:
        _check_ids(ids, lengths, self.config.vocab_size)
        T = ids.shape[1]
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
        return self.pool(x, mask) if self.pool is not None else _mean_pool(x, mask)  # (B, D)


class RecurrentClassifier(nn.Module):
    """Word vectors, the chapter 2 LSTM, one pooling over time, a linear head.

    ``pooling``: ``"attention"`` ($s = \\sum_t a_t h_t$, the seed's ``SelfAttention``), ``"mean"``
    ($s = \\frac1T \\sum_t h_t$ over the real tokens) or ``"last"`` ($s = h_T$, the final state).
    ``forward(ids (B, T), lengths (B,), return_weights=False)`` -> logits ``(B, n_classes)``
    (and the pooling weights ``(B, T)``: learned for attention, uniform for mean, one-hot for last).
    """

    def __init__(self, vocab_size: int, n_classes: int, embed_size: int = 16, hidden_size: int = 32,
                 pooling: str = "attention") -> None:
        super().__init__()
        if pooling not in ("attention", "mean", "last"):
            raise ValueError(f"pooling must be 'attention', 'mean' or 'last', got {pooling!r}")
        _check_positive(vocab_size=vocab_size, n_classes=n_classes)
        self.vocab_size, self.pooling = vocab_size, pooling
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.encoder = ContextEncoding(embed_size, hidden_size)
        self.attention = SelfAttention(hidden_size) if pooling == "attention" else None
        self.head = nn.Linear(hidden_size, n_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor,
                return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        _check_ids(ids, lengths, self.vocab_size)
        mask = padding_mask(lengths.to(ids.device), ids.shape[1])  # (B, T)
        h, (h_n, _) = self.encoder(self.embed(ids), lengths=lengths)  # (B, T, H), (1, B, H)
        if self.pooling == "attention":
            s, a = self.attention(h, mask, return_weights=True)  # (B, H), (B, T)
        elif self.pooling == "mean":
            s = _mean_pool(h, mask)
            a = mask / mask.sum(1, keepdim=True)
        else:
            s = h_n[0]  # (B, H): the state at each sequence's last real token
            a = F.one_hot(lengths.to(ids.device) - 1, ids.shape[1]).to(h.dtype)
        logits = self.head(s)  # (B, n_classes)
        return (logits, a) if return_weights else logits
