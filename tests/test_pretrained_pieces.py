"""Chapter 5, the pieces on small random inputs: no pretrained file is read here.

covers: mmtutor.pretrained.llama, mmtutor.pretrained.gguf_io, mmtutor.pretrained.smollm2 (name map, RoPE rows)

Each Llama piece against transformers' own implementation of it (forward and gradients), the whole decoder
against ``LlamaForCausalLM`` holding the same random weights, the KV cache against a full forward, the GGUF
reader and dequantiser against the ``gguf`` package on a file written with ``gguf.GGUFWriter``.
"""

from __future__ import annotations

import copy

import gguf
import numpy as np
import pytest
import torch
from transformers import LlamaConfig as HFLlamaConfig
from transformers.models.llama import modeling_llama as hf

from mmtutor.language_model import KVCache, generate
from mmtutor.pretrained.gguf_io import GGUFTensor, dequantize, read_gguf
from mmtutor.pretrained.llama import (
    GroupedQueryAttention,
    Llama,
    LlamaConfig,
    RMSNorm,
    SwiGLU,
    apply_rope,
    kv_cache_bytes,
    parameter_count,
    rms_norm,
    rope_angles,
)
from mmtutor.pretrained.smollm2 import our_name, permute_rope, to_transformers, unpermute_rope

SMALL = LlamaConfig(vocab_size=97, context_length=32, d_model=48, n_layers=2, n_heads=6, n_kv_heads=2, d_ff=80,
                    rope_base=1000.0, eps=1e-5)


def hf_config(c: LlamaConfig) -> HFLlamaConfig:
    config = HFLlamaConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff,
                           num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
                           num_key_value_heads=c.n_kv_heads, max_position_embeddings=c.context_length,
                           rms_norm_eps=c.eps, rope_theta=c.rope_base, tie_word_embeddings=c.tie_embeddings)
    config._attn_implementation = "eager"
    return config


def random_llama(seed: int = 0, config: LlamaConfig = SMALL) -> Llama:
    torch.manual_seed(seed)
    model = Llama(config).eval()
    with torch.no_grad():  # norms away from 1, so that a wrong gain would show
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "norm.weight":
                p.uniform_(0.5, 1.5)
    return model


def test_rms_norm_equals_transformers_forward_and_backward():
    x = torch.randn(3, 5, 16, requires_grad=True)  # float32: transformers' RMSNorm computes in float32
    ours, ref = RMSNorm(16), hf.LlamaRMSNorm(16, eps=1e-5)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2.0)
        ref.weight.copy_(ours.weight)
    torch.testing.assert_close(ours(x), ref(x))
    ours(x).square().sum().backward()
    gx, gw = x.grad.clone(), ours.weight.grad.clone()
    x.grad = None
    ref(x).square().sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, ref.weight.grad)
    x64, g64 = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True), torch.rand(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, g: rms_norm(a, g), (x64, g64.requires_grad_()))
    torch.testing.assert_close(rms_norm(x, ours.weight), torch.nn.functional.rms_norm(x, (16,), ours.weight, 1e-5))
    # the property: no centring, so a constant vector is not sent to 0 (LayerNorm would)
    assert rms_norm(torch.full((1, 8), 3.0), torch.ones(8)).abs().min() > 0.99


def test_rope_equals_transformers_and_depends_only_on_the_offset():
    c = HFLlamaConfig(hidden_size=64, num_attention_heads=4, rope_theta=500.0)
    rotary = hf.LlamaRotaryEmbedding(c)
    positions = torch.arange(7)
    q, k = torch.randn(2, 4, 7, 16), torch.randn(2, 4, 7, 16)
    cos, sin = rope_angles(positions, 16, 500.0)
    ref_cos, ref_sin = rotary(q, positions[None])
    torch.testing.assert_close(cos, ref_cos[0])
    torch.testing.assert_close(sin, ref_sin[0])
    ref_q, ref_k = hf.apply_rotary_pos_emb(q, k, ref_cos, ref_sin)
    torch.testing.assert_close(apply_rope(q, cos, sin), ref_q)
    torch.testing.assert_close(apply_rope(k, cos, sin), ref_k)
    # the score of one query and one key depends on their offset t - s only
    qv, kv = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    pos = torch.arange(40)
    cos64, sin64 = (a.double() for a in rope_angles(pos, 16, 500.0))

    def score(s: int, t: int) -> float:
        return float(apply_rope(qv, cos64[s], sin64[s]) @ apply_rope(kv, cos64[t], sin64[t]))

    for offset in (0, 3, 11):
        scores = [score(s, s + offset) for s in (0, 5, 17, 28)]
        assert max(scores) - min(scores) < 1e-4, scores
    assert abs(score(0, 3) - score(0, 11)) > 1e-3  # ... and it does depend on the offset
    # a rotation keeps the length
    torch.testing.assert_close(apply_rope(q, cos, sin).norm(dim=-1), q.norm(dim=-1))


def test_swiglu_equals_llama_mlp_forward_and_backward():
    c = HFLlamaConfig(hidden_size=24, intermediate_size=40, num_attention_heads=4, num_key_value_heads=4)
    ref, ours = hf.LlamaMLP(c).double(), SwiGLU(24, 40).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 24, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(ours(x), ref(x))
    grads = torch.autograd.grad(ours(x).sum(), [x, *ours.parameters()])
    ref_grads = torch.autograd.grad(ref(x).sum(), [x, *ref.parameters()])
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)


def test_grouped_query_attention_equals_llama_attention():
    config = hf_config(SMALL)
    ref = hf.LlamaAttention(config, layer_idx=0).double().eval()
    ours = GroupedQueryAttention(SMALL).double()
    ours.load_state_dict(ref.state_dict())
    T = 9
    x = torch.randn(2, T, SMALL.d_model, dtype=torch.float64, requires_grad=True)
    cos, sin = (a.double() for a in rope_angles(torch.arange(T), SMALL.head_dim, SMALL.rope_base))
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)[None, None]  # (1, 1, T, T)
    expected, expected_w = ref(x, position_embeddings=(cos[None], sin[None]), attention_mask=causal)
    got, got_w = ours(x, cos, sin, return_weights=True)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_w, expected_w)
    assert (got_w.triu(1) == 0).all()  # nothing from the future
    g = torch.autograd.grad(got.sum(), x)[0]
    torch.testing.assert_close(g, torch.autograd.grad(expected.sum(), x)[0])
    # the shared heads: only n_kv_heads keys and values are made (and cached)
    assert ours.k_proj.out_features == SMALL.n_kv_heads * SMALL.head_dim


def test_small_llama_equals_llama_for_causal_lm_forward_and_backward():
    model = random_llama(0)  # float32: transformers' RMSNorm computes in float32 whatever the input
    reference = to_transformers(copy.deepcopy(model))  # its own tensors, so that the gradients do not add up
    ids = torch.randint(0, SMALL.vocab_size, (2, 11), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(ids), reference(ids).logits, atol=1e-5, rtol=1e-5)
    model.requires_grad_(True)
    reference.requires_grad_(True)
    model(ids).logsumexp(-1).sum().backward()
    reference(ids).logits.logsumexp(-1).sum().backward()
    ref_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        ref_name = name if name.startswith("lm_head") else f"model.{name}"
        torch.testing.assert_close(p.grad, ref_params[ref_name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_kv_cache_gives_the_full_forward_logits():
    model = random_llama(2)
    ids = torch.randint(0, SMALL.vocab_size, (2, 14), generator=torch.Generator().manual_seed(3))
    full = model(ids)
    cache = KVCache()
    pieces = [model(ids[:, :5], cache=cache), model(ids[:, 5:6], cache=cache), model(ids[:, 6:], cache=cache)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 14
    assert cache.layers[0][0].shape == (2, SMALL.n_kv_heads, 14, SMALL.head_dim)  # 2 heads cached, not 6
    # chapter 4's generate drives it, with and without the cache
    prompt = ids[:, :4]
    torch.testing.assert_close(generate(model, prompt, 10, temperature=0),
                               generate(model, prompt, 10, temperature=0, use_cache=False))


def test_left_padding_with_an_attention_mask_equals_each_prompt_alone_and_transformers():
    model = random_llama(4)
    g = torch.Generator().manual_seed(5)
    prompts = [torch.randint(1, SMALL.vocab_size, (n,), generator=g) for n in (7, 3, 5)]
    W = max(map(len, prompts))
    ids = torch.stack([torch.cat([torch.zeros(W - len(p), dtype=torch.long), p]) for p in prompts])  # (3, 7)
    real = torch.stack([torch.arange(W) >= W - len(p) for p in prompts])  # (3, 7) False at the pads
    padded = model(ids, attention_mask=real)
    reference = to_transformers(copy.deepcopy(model))
    hf_logits = reference(ids, attention_mask=real.long(), position_ids=(real.cumsum(-1) - 1).clamp(min=0)).logits
    for b, p in enumerate(prompts):
        alone = model(p[None])[0]  # (n, V)
        torch.testing.assert_close(padded[b, W - len(p):], alone, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(hf_logits[b, W - len(p):], alone, atol=1e-5, rtol=1e-5)
    # a cached step after the padded prompt: the next token at each row's own next position
    cache = KVCache()
    model(ids, cache=cache, attention_mask=real)
    nxt = torch.tensor([[11], [12], [13]])
    step = model(nxt, cache=cache, attention_mask=torch.cat([real, torch.ones(3, 1, dtype=torch.bool)], 1))
    for b, p in enumerate(prompts):
        torch.testing.assert_close(step[b, 0], model(torch.cat([p, nxt[b]])[None])[0, -1], atol=1e-5, rtol=1e-5)
    # pads between a shared prefix and the rest (greedy_replies' layout): positions skip the pads
    prefix = torch.tensor([3, 1, 4, 1, 5])
    mid = torch.cat([prefix.expand(3, -1), ids], dim=1)  # (3, 12)
    mid_real = torch.cat([torch.ones(3, 5, dtype=torch.bool), real], dim=1)
    out = model(mid, attention_mask=mid_real)
    for b, p in enumerate(prompts):
        alone = model(torch.cat([prefix, p])[None])[0, -len(p):]
        torch.testing.assert_close(out[b, -len(p):], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(mid, attention_mask=mid_real, logits_to_keep=2), out[:, -2:])
    with pytest.raises(ValueError, match="attention_mask"):
        model(ids, attention_mask=real[:, 1:])  # one slot short
    with pytest.raises(TypeError, match="torch.bool"):
        model(ids, attention_mask=real.long())


def test_kv_cache_bytes_and_parameter_count():
    assert kv_cache_bytes(SMALL, 10) == 2 * 2 * 2 * 8 * 10 * 4
    model = random_llama(0)
    manual = sum(p.numel() for name, p in model.named_parameters())  # named_parameters lists a tied matrix once
    assert parameter_count(model) == manual
    assert model.lm_head.weight is model.embed_tokens.weight


def test_bad_inputs_raise_value_error():
    model = random_llama(0)
    with pytest.raises(ValueError, match="97"):
        model(torch.tensor([[1, 97]]))
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, SMALL.context_length + 1, dtype=torch.long))
    cache = KVCache()
    model(torch.zeros(1, 30, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="context_length"):
        generate(model, torch.zeros(1, 30, dtype=torch.long), 5)
    with pytest.raises(TypeError):
        model(torch.zeros(1, 3))
    with pytest.raises(TypeError):
        Llama({"d_model": 8})
    with pytest.raises(ValueError):
        Llama(LlamaConfig(d_model=48, n_heads=5))


def test_rope_row_permutation_round_trip_and_symptom():
    w = torch.randn(6 * 8, 5)
    assert not torch.equal(permute_rope(w, 6), w)
    torch.testing.assert_close(unpermute_rope(permute_rope(w, 6), 6), w)
    # llama.cpp's converter, as written there: reshape(n_head, 2, d/2, ...).swapaxes(1, 2)
    ref = w.numpy().reshape(6, 2, 4, 5).swapaxes(1, 2).reshape(w.shape)
    np.testing.assert_array_equal(permute_rope(w, 6).numpy(), ref)
    # the symptom of forgetting to undo it: the model computes something else
    model = random_llama(4)
    ids = torch.randint(0, SMALL.vocab_size, (1, 12), generator=torch.Generator().manual_seed(5))
    good = model(ids)
    with torch.no_grad():
        for block in model.layers:
            block.self_attn.q_proj.weight.copy_(permute_rope(block.self_attn.q_proj.weight, SMALL.n_heads))
            block.self_attn.k_proj.weight.copy_(permute_rope(block.self_attn.k_proj.weight, SMALL.n_kv_heads))
    assert (model(ids) - good).abs().max() > 1e-2


def test_gguf_names_map_onto_our_parameters():
    model = random_llama(0)
    names = {our_name(n) for n in ["token_embd.weight", "output_norm.weight", "output.weight"]
             + [f"blk.{i}.{p}.weight" for i in range(SMALL.n_layers) for p in
                ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                 "ffn_down")]}
    assert names == set(model.state_dict())
    with pytest.raises(ValueError, match="blk.0.attn_qkv"):
        our_name("blk.0.attn_qkv.weight")


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory):
    """A small GGUF file with every metadata kind and every tensor type the reader supports."""
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 64)).astype(np.float32) * 3
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("test.string", "héllo wörld")
    writer.add_array("test.strings", ["Ġthe", "a b", "你好"])
    writer.add_array("test.ints", [1, -2, 3])
    writer.add_float32("test.float", 1.5)
    writer.add_bool("test.bool", True)
    writer.add_uint64("test.u64", 2 ** 40)
    writer.add_tensor("t.f32", x)
    writer.add_tensor("t.f16", x.astype(np.float16))
    for kind in (gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q8_0):
        writer.add_tensor(f"t.{kind.name}", gguf.quants.quantize(x, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, x


def test_read_gguf_equals_gguf_reader(small_gguf):
    path, x = small_gguf
    ours, ref = read_gguf(path), gguf.GGUFReader(str(path))
    assert ours.version == 3
    for key, field in ref.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        got = ours.metadata[key]
        assert (list(got) if isinstance(got, np.ndarray) else got) == value, key
    assert set(ours.metadata) == {k for k in ref.fields if not k.startswith("GGUF.")}
    for t in ref.tensors:
        mine = ours.tensors[t.name]
        assert mine.shape == tuple(int(n) for n in reversed(t.shape)) and mine.ggml_type == int(t.tensor_type)
        np.testing.assert_array_equal(mine.data.reshape(-1), t.data.view(np.uint8).reshape(-1))
        expected = gguf.dequantize(t.data, t.tensor_type).reshape(mine.shape)
        np.testing.assert_array_equal(dequantize(mine).numpy(), expected)  # bit for bit
    # and the values are close to what was quantised, within each format's step
    assert np.abs(dequantize(ours.tensors["t.Q8_0"]).numpy() - x).max() < np.abs(x).max() / 127
    assert np.abs(dequantize(ours.tensors["t.Q4_1"]).numpy() - x).max() < (x.max() - x.min()) / 15


def test_q4_1_formula_by_hand():
    """One block built by hand: w = d q + m, low nibbles first."""
    d, m = np.float16(0.5), np.float16(-1.0)
    q = np.arange(32) % 16  # the 4-bit values of weights 0..31
    packed = (q[:16] | (q[16:] << 4)).astype(np.uint8)
    block = np.concatenate([np.array([d]).view(np.uint8), np.array([m]).view(np.uint8), packed])
    tensor = GGUFTensor("w", (1, 32), 3, block)
    torch.testing.assert_close(dequantize(tensor), torch.tensor(0.5 * q - 1.0, dtype=torch.float32)[None])


def test_read_gguf_refuses_other_files(tmp_path):
    path = tmp_path / "not.gguf"
    path.write_bytes(b"NOPE" + bytes(40))
    with pytest.raises(ValueError, match="not a GGUF"):
        read_gguf(path)


def test_pieces_check_their_inputs():
    with pytest.raises(ValueError, match="weight"):
        rms_norm(torch.randn(2, 8), torch.ones(7))
    with pytest.raises(ValueError, match="even"):
        rope_angles(torch.arange(4), 7)
    with pytest.raises(ValueError, match="positions"):
        rope_angles(torch.tensor([-1, 0]), 8)
    cos, sin = rope_angles(torch.arange(4), 8)
    with pytest.raises(ValueError, match="cos"):
        apply_rope(torch.randn(5, 8), cos, sin)  # 5 positions, 4 angles
    with pytest.raises(ValueError):
        SwiGLU(8, 16)(torch.randn(2, 3, 9))
    with pytest.raises(TypeError):
        SwiGLU(8, 16)(torch.randn(2, 3, 8, dtype=torch.float64))
    with pytest.raises(ValueError):
        GroupedQueryAttention(SMALL)(torch.randn(1, 3, SMALL.d_model + 1), *rope_angles(torch.arange(3), 8))
