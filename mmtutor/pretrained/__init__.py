r"""Chapter 5: pretrained transformers through the learner's own code.

* :mod:`.bert`: all-MiniLM-L6-v2 (a BERT) on chapter 3's encoder blocks: :func:`load_minilm`,
  :func:`sentence_embeddings`;
* :mod:`.llama`: the pieces of a Llama-style decoder (RMSNorm, RoPE, SwiGLU, grouped-query attention) and
  the model, driven by chapter 4's ``generate`` and KV cache;
* :mod:`.gguf_io`: reading llama.cpp's GGUF file and dequantising its 4- and 8-bit blocks;
* :mod:`.smollm2`: SmolLM2-135M-Instruct from its GGUF file (names, the RoPE row order): :func:`load_smollm2`;
* :mod:`.smollm2_tokenizer`: its byte-level BPE through chapter 4's ``apply_merges``, and its chat template.
"""

from .bert import BertConfig, BertModel, MiniLMTokenizer, load_minilm, sentence_embeddings
from .llama import Llama, LlamaConfig
from .smollm2 import load_smollm2
from .smollm2_tokenizer import SmolLM2Tokenizer

__all__ = ["BertConfig", "BertModel", "Llama", "LlamaConfig", "MiniLMTokenizer", "SmolLM2Tokenizer", "load_minilm",
           "load_smollm2", "sentence_embeddings"]
