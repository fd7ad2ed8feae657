"""Chapter 4: sampling against transformers' warpers, generation with and without the KV cache, the GPT
against transformers' GPT-2 (logits, gradients, cache), causality, bad inputs.

covers: mmtutor.language_model
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from mmtutor.language_model import (
    GPT,
    GPTConfig,
    KVCache,
    generate,
    sample_next,
    top_k_filter,
    top_p_filter,
)


def small_gpt(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    config = dict(vocab_size=50, context_length=40, d_model=32, n_heads=4, n_layers=2)
    return GPT(GPTConfig(**{**config, **overrides}))


class Recorder(nn.Module):
    """Wraps a decoder and records the shape of every call and whether it came with a cache."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, []

    @property
    def context_length(self) -> int:
        return self.model.context_length

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        self.calls.append((tuple(ids.shape), cache is not None, 0 if cache is None else cache.length))
        return self.model(ids, cache=cache)


# ----------------------------------------------------------------------------- filtering = transformers' warpers
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.integers(1, 4))
def test_top_k_equals_transformers(seed: int, k: int, batch: int) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, 37, generator=g) * 3
    torch.testing.assert_close(top_k_filter(logits, k), TopKLogitsWarper(k)(None, logits))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 1.0), st.floats(0.3, 5.0))
def test_top_p_equals_transformers(seed: int, p: float, spread: float) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 41, generator=g) * spread
    ours, theirs = top_p_filter(logits, p), TopPLogitsWarper(p)(None, logits)
    assert torch.equal(ours.isinf(), theirs.isinf())
    torch.testing.assert_close(ours, theirs)


def test_top_p_keeps_the_smallest_set_that_reaches_p() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = lambda p: (~top_p_filter(probs.log(), p).isinf()).sum().item()  # noqa: E731
    assert [kept(p) for p in (0.1, 0.45, 0.6, 0.75, 0.9, 0.96, 1.0)] == [1, 1, 2, 2, 3, 4, 4]


def test_top_k_keeps_ties_like_transformers() -> None:
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0]])
    assert (~top_k_filter(logits, 1).isinf()).sum() == 2 == (~TopKLogitsWarper(1)(None, logits).isinf()).sum()


# ----------------------------------------------------------------------------- sample_next
def test_greedy_cases_are_the_argmax() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 30, generator=g)
    argmax = logits.argmax(-1)
    assert torch.equal(sample_next(logits, temperature=0), argmax)
    assert torch.equal(sample_next(logits, top_k=1, generator=g), argmax)
    assert torch.equal(sample_next(logits, temperature=5.0, top_k=1, generator=g), argmax)
    assert torch.equal(sample_next(logits, top_p=1e-9, generator=g), argmax)  # the nucleus is one token
    tied = torch.tensor([[0.0, 2.0, 2.0]])
    assert sample_next(tied, top_k=1).item() == 1  # top_k=1 is the argmax even on a tie


def test_sampling_follows_the_distribution() -> None:
    probs = torch.tensor([0.6, 0.3, 0.1, 0.0])
    logits = probs.log().expand(20_000, 4).contiguous()
    draws = sample_next(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).double() / len(draws)
    torch.testing.assert_close(freq, probs.double(), atol=0.015, rtol=0)
    assert freq[3] == 0
    hot = sample_next(torch.tensor([[2.0, 0.0]]).expand(20_000, 2), temperature=2.0,
                      generator=torch.Generator().manual_seed(1))
    assert abs(hot.double().mean().item() - torch.softmax(torch.tensor([1.0, 0.0]), 0)[1].item()) < 0.015


def test_filtered_sampling_draws_only_kept_tokens() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(500, 20, generator=g)
    for kwargs in ({"top_k": 3}, {"top_p": 0.5}, {"top_k": 5, "top_p": 0.7, "temperature": 0.8}):
        draws = sample_next(logits, generator=g, **kwargs)
        z = logits / kwargs.get("temperature", 1.0)
        z = top_k_filter(z, kwargs["top_k"]) if "top_k" in kwargs else z
        z = top_p_filter(z, kwargs["top_p"]) if "top_p" in kwargs else z
        assert not z.gather(1, draws[:, None]).isinf().any()


def test_same_seed_same_tokens_and_returns_on_the_logits_device() -> None:
    logits = torch.randn(6, 100)
    a = sample_next(logits, generator=torch.Generator().manual_seed(7), top_p=0.9)
    b = sample_next(logits, generator=torch.Generator().manual_seed(7), top_p=0.9)
    assert torch.equal(a, b) and a.dtype == torch.long and a.shape == (6,) and a.device == logits.device
    # float32 and float64 logits of the same values draw the same tokens (the draw is in float64 on the CPU)
    c = sample_next(logits.double(), generator=torch.Generator().manual_seed(7), top_p=0.9)
    assert torch.equal(a, c)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"top_p": 0.0}, r"top_p must lie in \(0.0, 1.0\], got 0.0"),
    ({"top_p": 1.5}, r"top_p must lie in \(0.0, 1.0\], got 1.5"),
    ({"top_k": 0}, "top_k must be an int >= 1.*got 0"),
    ({"top_k": 2.5}, "top_k must be an int >= 1.*got 2.5"),
    ({"temperature": -0.1}, r"temperature must lie in \[0.0, inf\), got -0.1"),
])
def test_bad_settings_name_what_came(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_next(torch.randn(2, 5), **kwargs)
    with pytest.raises(ValueError, match=message):
        generate(small_gpt(), torch.zeros(1, 3, dtype=torch.long), 2, **kwargs)


def test_bad_logits_and_generator() -> None:
    with pytest.raises(ValueError, match=r"logits must have shape \(B, V\), got \(5,\)"):
        sample_next(torch.randn(5))
    with pytest.raises(ValueError, match=r"logits must have shape \(B, V\), got \(2, 3, 5\)"):
        sample_next(torch.randn(2, 3, 5))
    with pytest.raises(TypeError, match="floating-point"):
        sample_next(torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="temperature must be a finite number"):
        sample_next(torch.randn(2, 5), temperature=float("nan"))
    with pytest.raises(ValueError, match="generator must be a CPU torch.Generator"):
        sample_next(torch.randn(2, 5), generator=0)


# ----------------------------------------------------------------------------- generate and the KV cache
@pytest.mark.parametrize("kwargs", [{"temperature": 0}, {}, {"top_k": 5}, {"top_p": 0.8, "temperature": 1.3}])
def test_cached_and_uncached_generation_agree(kwargs: dict) -> None:
    model = small_gpt()
    prompt = torch.randint(0, 50, (3, 5), generator=torch.Generator().manual_seed(0))
    with_cache = generate(model, prompt, 30, generator=torch.Generator().manual_seed(1), **kwargs)
    without = generate(model, prompt, 30, generator=torch.Generator().manual_seed(1), use_cache=False, **kwargs)
    assert with_cache.shape == (3, 35) and torch.equal(with_cache[:, :5], prompt)
    assert torch.equal(with_cache, without)


def test_generate_calls_the_model_as_the_protocol_says() -> None:
    model = Recorder(small_gpt())
    prompt = torch.randint(0, 50, (2, 4))
    generate(model, prompt, 5)
    assert model.calls == [((2, 4), True, 0)] + [((2, 1), True, 4 + i) for i in range(4)]
    model.calls.clear()
    generate(model, prompt, 5, use_cache=False)
    assert model.calls == [((2, 4 + i), False, 0) for i in range(5)]
    model.calls.clear()
    assert torch.equal(generate(model, prompt, 0), prompt) and model.calls == []


def test_generate_restores_training_mode_and_checks_the_context_length() -> None:
    model = small_gpt()
    model.train()
    generate(model, torch.zeros(1, 3, dtype=torch.long), 4)
    assert model.training
    assert generate(model, torch.zeros(1, 10, dtype=torch.long), 30).shape == (1, 40)
    with pytest.raises(ValueError, match="10 tokens plus max_new_tokens=31 exceed the model's context_length=40"):
        generate(model, torch.zeros(1, 10, dtype=torch.long), 31)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 0.*got -1"):
        generate(model, torch.zeros(1, 3, dtype=torch.long), -1)
    with pytest.raises(ValueError, match=r"ids must have shape \(B, T\)"):
        generate(model, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="context_length"):
        generate(nn.Linear(2, 2), torch.zeros(1, 3, dtype=torch.long), 2)


def test_kv_cache_keeps_every_layer() -> None:
    cache = KVCache()
    k = torch.randn(2, 4, 3, 8)
    cache.update(0, k, k)
    cache.update(1, k, k)
    k_all, _ = cache.update(0, k[:, :, :1], k[:, :, :1])
    assert k_all.shape == (2, 4, 4, 8) and cache.length == 4
    with pytest.raises(ValueError, match="layer 3 updated before layers 0..2"):
        cache.update(3, k, k)


def test_kv_cache_expand_shares_one_prefix() -> None:
    cache = KVCache()
    k, v = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    cache.update(0, k, v)
    cache.expand(3)
    assert cache.layers[0][0].shape == (3, 2, 5, 4) and cache.layers[0][0].data_ptr() == k.data_ptr()  # a view
    k_all, _ = cache.update(0, torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4))
    assert k_all.shape == (3, 2, 6, 4) and torch.equal(k_all[2, :, :5], k[0])
    with pytest.raises(ValueError, match="one sequence"):
        cache.expand(2)  # already three


# ----------------------------------------------------------------------------- the GPT
def gpt2_pair(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=40, n_embd=32, n_layer=2, n_head=4,
                                    activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                    layer_norm_epsilon=1e-5, bos_token_id=None, eos_token_id=None)).eval()
    return small_gpt(seed + 1).load_from_gpt2(hf), hf


def test_gpt_equals_transformers_gpt2_forward_and_gradients() -> None:
    ours, hf = gpt2_pair()
    ids = torch.randint(0, 50, (3, 17), generator=torch.Generator().manual_seed(0))
    logits, ref = ours(ids), hf(ids).logits
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-4)
    upstream = torch.randn_like(ref)
    (logits * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours.token_embedding.weight.grad, hf.transformer.wte.weight.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.blocks[0].attn.q_proj.weight.grad,
                               hf.transformer.h[0].attn.c_attn.weight.grad[:, :32].T, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.blocks[1].linear1.weight.grad, hf.transformer.h[1].mlp.c_fc.weight.grad.T,
                               atol=1e-5, rtol=1e-4)


def test_gpt_cache_equals_the_full_forward_and_transformers_cache() -> None:
    ours, hf = gpt2_pair(1)
    ids = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = ours(ids)
        cache = KVCache()
        parts = [ours(ids[:, :7], cache=cache)] + [ours(ids[:, t:t + 1], cache=cache) for t in range(7, 12)]
        parts.append(ours(ids[:, 12:], cache=cache))
        assert cache.length == 20 and len(cache.layers) == 2
        torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-4)
        out = hf(ids[:, :7], use_cache=True)
        past = out.cache
        step = hf(ids[:, 7:8], cache=past, use_cache=True).logits
        torch.testing.assert_close(parts[1], step, atol=1e-5, rtol=1e-4)


def test_changing_a_future_token_leaves_earlier_logits_unchanged() -> None:
    model = small_gpt()
    ids = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(2))
    changed = ids.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 50
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.equal(a[:, :9], b[:, :9])  # positions 0..8 never see position 9
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_gpt_ties_its_output_to_the_token_table_and_counts_its_parameters() -> None:
    model = small_gpt()
    assert model.head.weight is model.token_embedding.weight
    D, V, L, C = 32, 50, 2, 40
    per_block = 4 * (D * D + D) + 2 * 2 * D + (D * 4 * D + 4 * D) + (4 * D * D + D)
    assert sum(p.numel() for p in model.parameters()) == V * D + C * D + L * per_block + 2 * D
    assert model.context_length == 40 and model(torch.zeros(1, 40, dtype=torch.long)).shape == (1, 40, 50)


def test_gpt_bad_inputs() -> None:
    model = small_gpt()
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 50\)"):
        model(torch.tensor([[3, 50]]))
    with pytest.raises(ValueError, match="do not fit the context_length 40"):
        model(torch.zeros(1, 41, dtype=torch.long))
    cache = KVCache()
    model(torch.zeros(1, 39, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="39 cached"):
        model(torch.zeros(1, 2, dtype=torch.long), cache=cache)
    with pytest.raises(TypeError, match="integer dtype"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="d_model=30 must be divisible by n_heads=4"):
        GPT(GPTConfig(vocab_size=5, d_model=30, n_heads=4))
    with pytest.raises(ValueError, match="vocab_size must be an int >= 1"):
        GPT(GPTConfig(vocab_size=0))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, 32\), got \(1, 3, 7\)"):
        model.blocks[0].attn(torch.randn(1, 3, 7))
    with pytest.raises(TypeError, match="config must be a GPTConfig"):
        GPT({"vocab_size": 5})
