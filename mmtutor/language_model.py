r"""Chapter 4: a language model, tokens in and text out (work in progress: the cache protocol first).

The contract every decoder of the workbook follows (chapter 4's ``GPT``, chapter 5's Llama), so that one
``generate`` drives them all:

* ``model(ids (B, T), cache=None) -> logits (B, T, V)``;
* with a :class:`KVCache`, the ``T`` new tokens sit at positions ``cache.length ... cache.length + T - 1``,
  and every attention layer ``i`` calls ``k, v = cache.update(i, k, v)`` to attend over all positions so far;
* ``model.context_length``: the longest sequence the model may see.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
