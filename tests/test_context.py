"""Chapter 2: the from-scratch recurrent cells and layers against torch, and the seed's ContextEncoding.

covers: mmtutor.context, mmtutor.context_tasks
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mmtutor
from mmtutor.context import (
    ContextEncoding,
    LSTMCell,
    LSTMLayer,
    RNNCell,
    RNNLayer,
    lstm_cell,
    lstm_gates,
    lstm_parameter_count,
)


def _grads(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters()}


# ----------------------------------------------------------------------------- cells
def test_rnn_cell_matches_torch_forward_and_gradients():
    torch.manual_seed(0)
    ref, ours = nn.RNNCell(5, 7), RNNCell(5, 7)
    ours.load_state_dict(ref.state_dict())
    x, h = torch.randn(3, 5, requires_grad=True), torch.randn(3, 7)
    out_ref, out = ref(x, h), ours(x, h)
    torch.testing.assert_close(out, out_ref)
    (out_ref.sin().sum()).backward()
    gx = x.grad.clone()
    x.grad = None
    (out.sin().sum()).backward()
    torch.testing.assert_close(x.grad, gx)
    for name, g in _grads(ref).items():
        torch.testing.assert_close(_grads(ours)[name], g)


def test_lstm_cell_state_dict_round_trips_both_ways():
    torch.manual_seed(0)
    ref, ours = nn.LSTMCell(4, 6), LSTMCell(4, 6)
    shapes = {k: v.shape for k, v in ref.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == shapes
    ours.load_state_dict(ref.state_dict())
    ref2 = nn.LSTMCell(4, 6)
    ref2.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4)
    torch.testing.assert_close(ref2(x), ref(x))


def test_lstm_cell_matches_torch_forward_and_gradients():
    torch.manual_seed(1)
    ref, ours = nn.LSTMCell(5, 8), LSTMCell(5, 8)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 5, requires_grad=True)
    h0, c0 = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    h_ref, c_ref = ref(x, (h0, c0))
    h, c = ours(x, (h0, c0))
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)
    w = torch.randn(8)
    ((h_ref @ w).sum() + c_ref.square().sum()).backward()
    want = [t.grad.clone() for t in (x, h0, c0)]
    for t in (x, h0, c0):
        t.grad = None
    ((h @ w).sum() + c.square().sum()).backward()
    for t, g in zip((x, h0, c0), want, strict=True):
        torch.testing.assert_close(t.grad, g)
    for name, g in _grads(ref).items():
        torch.testing.assert_close(_grads(ours)[name], g)


def test_lstm_cell_none_state_means_zeros():
    torch.manual_seed(2)
    cell = LSTMCell(3, 4)
    x = torch.randn(2, 3)
    zeros = torch.zeros(2, 4)
    for a, b in zip(cell(x), cell(x, (zeros, zeros)), strict=True):
        torch.testing.assert_close(a, b)


def test_gate_order_is_i_f_g_o():
    # Put a large bias on one block of rows at a time: only that gate should saturate.
    cell = LSTMCell(2, 3)
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias_ih[3:6] = 20.0  # block 1 = forget gate
    x, h = torch.randn(5, 2), torch.zeros(5, 3)
    i, f, g, o = lstm_gates(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    torch.testing.assert_close(f, torch.ones_like(f))
    torch.testing.assert_close(i, torch.full_like(i, 0.5))
    torch.testing.assert_close(o, torch.full_like(o, 0.5))
    torch.testing.assert_close(g, torch.zeros_like(g))
    # and with f = 1, i * g = 0, the memory passes through unchanged
    c0 = torch.randn(5, 3)
    _, c1 = lstm_cell(x, h, c0, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    torch.testing.assert_close(c1, c0)


def test_lstm_cell_gradcheck_float64():
    torch.manual_seed(3)
    cell = LSTMCell(3, 4).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h, c: cell(x, (h, c)), (x, h, c))
    params = tuple(p.detach().clone().requires_grad_() for p in cell.parameters())
    assert torch.autograd.gradcheck(lambda *w: lstm_cell(x.detach(), h.detach(), c.detach(), *w), params)


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("cls, ref_cls", [(LSTMLayer, nn.LSTM), (RNNLayer, nn.RNN)])
def test_layer_matches_torch_forward_and_gradients(cls, ref_cls):
    torch.manual_seed(4)
    ref, ours = ref_cls(5, 6, batch_first=True), cls(5, 6)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 7, 5, requires_grad=True)
    out_ref, state_ref = ref(x)
    out, state = ours(x)
    torch.testing.assert_close(out, out_ref)
    states = state if isinstance(state, tuple) else (state,)
    states_ref = state_ref if isinstance(state_ref, tuple) else (state_ref,)
    for a, b in zip(states, states_ref, strict=True):
        assert a.shape == (1, 3, 6)
        torch.testing.assert_close(a, b)
    (out_ref.tanh().sum() + states_ref[-1].sum()).backward()
    gx = x.grad.clone()
    x.grad = None
    (out.tanh().sum() + states[-1].sum()).backward()
    torch.testing.assert_close(x.grad, gx)
    for name, g in _grads(ref).items():
        torch.testing.assert_close(_grads(ours)[name], g)


def test_lstm_layer_with_initial_state_and_gates():
    torch.manual_seed(5)
    ref, ours = nn.LSTM(4, 5, batch_first=True), LSTMLayer(4, 5)
    ours.load_state_dict(ref.state_dict())
    x, h0, c0 = torch.randn(2, 6, 4), torch.randn(1, 2, 5), torch.randn(1, 2, 5)
    out_ref, (h_ref, c_ref) = ref(x, (h0, c0))
    out, (h, c), gates = ours(x, (h0, c0), return_gates=True)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(c, c_ref)
    assert gates.shape == (2, 6, 4, 5)
    sig = gates[:, :, [0, 1, 3]]
    assert ((sig > 0) & (sig < 1)).all() and (gates[:, :, 2].abs() < 1).all()
    torch.testing.assert_close(out[:, -1], h[0])


def test_layer_gradcheck_float64():
    torch.manual_seed(6)
    layer = LSTMLayer(2, 3).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x)[0], (x,))
    rnn = RNNLayer(2, 3).double()
    assert torch.autograd.gradcheck(lambda x: rnn(x, lengths=torch.tensor([4, 2]))[0], (x,))


def test_scratch_layer_lengths_match_packed_torch():
    torch.manual_seed(7)
    enc, ours = ContextEncoding(4, 5), LSTMLayer(4, 5)
    ours.load_state_dict(enc.lstm.state_dict())
    x, lengths = torch.randn(3, 6, 4), torch.tensor([6, 2, 4])
    out_ref, (h_ref, c_ref) = enc(x, lengths=lengths)
    out, (h, c) = ours(x, lengths=lengths)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)


# ----------------------------------------------------------------------------- ContextEncoding
def test_context_encoding_is_exported_and_wraps_lstm():
    assert mmtutor.ContextEncoding is ContextEncoding
    enc = ContextEncoding(8, 16)
    assert isinstance(enc.lstm, nn.LSTM) and enc.lstm.batch_first
    out, (h_n, c_n) = enc(torch.randn(2, 5, 8))
    assert out.shape == (2, 5, 16) and h_n.shape == (1, 2, 16) and c_n.shape == (1, 2, 16)
    torch.testing.assert_close(out[:, -1], h_n[0])


def test_context_encoding_h_none_equals_zero_state_and_state_is_used():
    torch.manual_seed(8)
    enc = ContextEncoding(3, 4)
    x = torch.randn(2, 5, 3)
    zeros = (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
    out_none, _ = enc(x)
    out_zero, _ = enc(x, zeros)
    torch.testing.assert_close(out_none, out_zero)
    out_other, _ = enc(x, (torch.ones(1, 2, 4), torch.ones(1, 2, 4)))
    assert not torch.allclose(out_other, out_none)
    # carrying the state across two halves equals reading the whole sequence
    out_a, state = enc(x[:, :2])
    out_b, (h_n, _) = enc(x[:, 2:], state)
    torch.testing.assert_close(torch.cat([out_a, out_b], dim=1), out_none)


def test_padded_sentence_encodes_like_unpadded():
    torch.manual_seed(9)
    enc = ContextEncoding(4, 6)
    short, long = torch.randn(1, 3, 4), torch.randn(1, 7, 4)
    out_short, (h_short, c_short) = enc(short)
    x = torch.zeros(2, 7, 4)
    x[0, :3], x[1] = short[0], long[0]
    x[0, 3:] = 5.0  # garbage in the padding must not matter
    out, (h_n, c_n) = enc(x, lengths=torch.tensor([3, 7]))
    torch.testing.assert_close(out[0, :3], out_short[0])
    torch.testing.assert_close(out[0, 3:], torch.zeros(4, 6))
    torch.testing.assert_close(h_n[:, 0], h_short[:, 0])
    torch.testing.assert_close(c_n[:, 0], c_short[:, 0])
    torch.testing.assert_close(h_n[:, 1], enc(long)[1][0][:, 0])
    # without lengths the padding is read as words, and the state changes
    assert not torch.allclose(enc(x)[1][0][:, 0], h_short[:, 0])


def test_padded_gradients_ignore_padding():
    torch.manual_seed(10)
    enc = ContextEncoding(3, 4)
    x = torch.randn(2, 5, 3, requires_grad=True)
    _, (h_n, _) = enc(x, lengths=torch.tensor([2, 5]))
    h_n.sum().backward()
    assert (x.grad[0, 2:] == 0).all() and (x.grad[0, :2] != 0).any()


@pytest.mark.parametrize("make, error, words", [
    (lambda e: e(torch.randn(5, 8)), ValueError, "(B, T, E)"),
    (lambda e: e(torch.randn(2, 5, 7)), ValueError, "last dimension 8"),
    (lambda e: e(torch.randint(0, 3, (2, 5, 8))), TypeError, "floating-point"),
    (lambda e: e(torch.randn(2, 5, 8, dtype=torch.float64)), TypeError, "float64"),
    (lambda e: e(torch.randn(2, 5, 8), torch.zeros(1, 2, 16)), TypeError, "pair"),
    (lambda e: e(torch.randn(2, 5, 8), (torch.zeros(2, 16), torch.zeros(2, 16))), ValueError, "(1, 2, 16)"),
    (lambda e: e(torch.randn(2, 5, 8), lengths=torch.tensor([5, 0])), ValueError, "[1, 5]"),
    (lambda e: e(torch.randn(2, 5, 8), lengths=torch.tensor([5, 6])), ValueError, "[1, 5]"),
    (lambda e: e(torch.randn(2, 5, 8), lengths=torch.tensor([5])), ValueError, "(2,)"),
    (lambda e: e(torch.randn(2, 5, 8), lengths=torch.tensor([5.0, 2.0])), TypeError, "integer"),
])
def test_context_encoding_bad_inputs(make, error, words):
    with pytest.raises(error, match=None) as info:
        make(ContextEncoding(8, 16))
    assert words in str(info.value)


def test_bad_sizes_and_cell_inputs():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            ContextEncoding(bad, 4)
        with pytest.raises(ValueError, match="positive int"):
            LSTMCell(3, bad)
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"\(B, I\)"):
        cell(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        cell(torch.randn(2, 3), (torch.zeros(2, 5), torch.zeros(2, 4)))
    with pytest.raises(ValueError, match=r"\(1, 2, 4\)"):
        LSTMLayer(3, 4)(torch.randn(2, 5, 3), (torch.zeros(2, 4), torch.zeros(2, 4)))


def test_lstm_parameter_count_matches_torch():
    for i, h in [(1, 1), (8, 16), (300, 128)]:
        assert lstm_parameter_count(i, h) == sum(p.numel() for p in nn.LSTM(i, h).parameters())
        assert lstm_parameter_count(i, h) == sum(p.numel() for p in LSTMCell(i, h).parameters())


# ----------------------------------------------------------------------------- the order-sensitive task
from mmtutor.context_tasks import (  # noqa: E402
    SentenceClassifier,
    accuracy,
    bag_of_words,
    gradient_norms_per_step,
    shuffled_batches,
    side_label,
    side_loss,
    side_questions,
)
from mmtutor.data.scenes import Caption, Thing  # noqa: E402
from mmtutor.train import seeded_batches  # noqa: E402


@pytest.fixture(scope="module")
def side_data():
    return side_questions(n_scenes=600, seed=3)


def test_side_label_reads_the_relation():
    red, blue = Thing("circle", "red", "small"), Thing("square", "blue", "large")
    assert side_label(Caption(red, "left of", blue), "red") == 1
    assert side_label(Caption(red, "left of", blue), "blue") == 0
    assert side_label(Caption(red, "right of", blue), "red") == 0
    assert side_label(Caption(blue, "right of", red), "red") == 1
    with pytest.raises(ValueError, match="left of"):
        side_label(Caption(red, "above", blue), "red")
    with pytest.raises(ValueError, match="green"):
        side_label(Caption(red, "left of", blue), "green")


def test_side_questions_come_in_same_bag_pairs_with_opposite_answers(side_data):
    train_set, test_set = side_data
    assert len(train_set) > 0 and len(test_set) > 0
    for data in side_data:
        assert len(data) % 4 == 0 and data.ids.shape[0] == len(data) == data.label.shape[0]
        for k in range(0, len(data), 2):
            assert bag_of_words(data.texts[k]) == bag_of_words(data.texts[k + 1])
            assert data.texts[k] != data.texts[k + 1]
            assert data.query[k] == data.query[k + 1] and data.label[k] + data.label[k + 1] == 1
    train_bags = {bag_of_words(t) for t in train_set.texts}
    assert not any(bag_of_words(t) in train_bags for t in test_set.texts), "split by bag of words"
    assert abs(train_set.label.mean().item() - 0.5) < 1e-6


def test_a_bag_of_words_model_is_exactly_at_chance(side_data):
    torch.manual_seed(0)
    _, test_set = side_data
    model = SentenceClassifier("mean")
    with torch.no_grad():
        s = model.sentence(test_set.ids, test_set.lengths)
    torch.testing.assert_close(s[0::2], s[1::2])  # partners look identical to it, however it is trained
    assert accuracy(model, test_set) == pytest.approx(0.5, abs=1e-6)


def test_lstm_classifier_ignores_padding_and_trains(side_data):
    from mmtutor.train import train

    train_set, test_set = side_data
    torch.manual_seed(0)
    model = SentenceClassifier("lstm")
    ids, lengths, query, _ = test_set.tensors()
    with torch.no_grad():
        wide = torch.cat([ids, torch.full((len(ids), 3), 7)], dim=1)  # extra junk columns past every length
        torch.testing.assert_close(model(wide, lengths, query), model(ids, lengths, query))
    before = [p.detach().clone() for p in model.parameters()]
    history = train(model, side_loss, shuffled_batches(train_set, 64)(0)[:5], lr=5e-3, verbose=False,
                    progress=False)
    assert len(history) == 5 and all(torch.isfinite(torch.tensor(history)))
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True) if a.ndim == 2)


def test_shuffled_batches_are_seeded_and_cover_the_data(side_data):
    train_set, _ = side_data
    batches = shuffled_batches(train_set, 50, seed=1)
    first, again, other = batches(0), batches(0), batches(1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][0], other[0][0])
    assert sum(len(b[0]) for b in first) == len(train_set)
    with pytest.raises(ValueError, match="batch_size"):
        shuffled_batches(train_set, 0)
    with pytest.raises(TypeError, match="SideQuestions"):
        shuffled_batches(train_set.tensors(), 8)
    with pytest.raises(ValueError, match="same first size"):
        seeded_batches((torch.zeros(3), torch.zeros(4)))


def test_gradient_norms_per_step_vanish_for_a_plain_rnn():
    torch.manual_seed(0)
    x = torch.randn(4, 30, 8)
    rnn_norms = gradient_norms_per_step(RNNLayer(8, 16), x)
    lstm = LSTMLayer(8, 16)
    with torch.no_grad():
        lstm.bias_ih_l0[16:32] += 4.0  # forget gates near 1
    lstm_norms = gradient_norms_per_step(lstm, x)
    assert rnn_norms.shape == (30,) and (rnn_norms > 0).all()
    assert rnn_norms[0] < 1e-4 * rnn_norms[-2]
    assert lstm_norms[0] > 100 * rnn_norms[0]
    with pytest.raises(ValueError, match="(B, T, I)"):
        gradient_norms_per_step(lstm, torch.randn(30, 8))


def test_classifier_bad_inputs():
    with pytest.raises(ValueError, match="'mean' or 'lstm'"):
        SentenceClassifier("gru")
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        SentenceClassifier("mean")(torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.long),
                                   torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="test_fraction"):
        side_questions(10, test_fraction=1.0)
    ids, lengths = torch.ones(2, 4, dtype=torch.long), torch.tensor([4, 2])
    with pytest.raises(TypeError, match="torch.long"):
        SentenceClassifier("lstm")(ids.float(), lengths, torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="query"):
        SentenceClassifier("lstm")(ids, lengths, torch.ones(3, dtype=torch.long))


def test_accuracy_restores_the_training_mode(side_data):
    model = SentenceClassifier("mean").train()
    accuracy(model, side_data[1])
    assert model.training
    with pytest.raises(TypeError, match="SideQuestions"):
        accuracy(model, side_data[1].tensors())


def test_initial_state_with_lengths_follows_each_sentence():
    torch.manual_seed(11)
    enc = ContextEncoding(3, 4)
    x, lengths = torch.randn(3, 5, 3), torch.tensor([2, 5, 3])
    h0, c0 = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    out, (h_n, c_n) = enc(x, (h0, c0), lengths=lengths)
    for b in range(3):  # unsorted lengths: each row must keep its own initial state
        L = int(lengths[b])
        out_b, (h_b, c_b) = enc(x[b:b + 1, :L], (h0[:, b:b + 1], c0[:, b:b + 1]))
        torch.testing.assert_close(out[b:b + 1, :L], out_b)
        torch.testing.assert_close(h_n[:, b:b + 1], h_b)
        torch.testing.assert_close(c_n[:, b:b + 1], c_b)
