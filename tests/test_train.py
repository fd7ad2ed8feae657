"""The shared training loop.

covers: mmtutor.train
"""

import pytest
import torch
from torch import nn

from mmtutor.train import History, evaluating, seeded_batches, to_device, train


def _line_data():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 128).unsqueeze(1)
    y = 2 * x + 0.5 + 0.01 * torch.randn(x.shape, generator=g)
    return list(zip(x.split(16), y.split(16), strict=True))


def _mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def test_train_fits_a_line_and_returns_every_step():
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    history = train(model, _mse, _line_data(), epochs=30, lr=0.05, progress=False, verbose=False)
    assert isinstance(history, History) and len(history) == 30 * 8
    assert all(isinstance(v, float) for v in history)
    assert history[-1] < 0.01 * history[0]
    assert history.seconds > 0
    assert model.weight.item() == pytest.approx(2, abs=0.05)
    assert model.bias.item() == pytest.approx(0.5, abs=0.05)


def test_batches_may_be_a_function_of_the_epoch():
    seen = []

    def batches(epoch):
        seen.append(epoch)
        return _line_data()

    train(nn.Linear(1, 1), _mse, batches, epochs=3, progress=False, verbose=False)
    assert seen == [0, 1, 2]


def test_summary_line(capsys):
    train(nn.Linear(1, 1), _mse, _line_data(), epochs=1, desc="demo", progress=False)
    assert capsys.readouterr().out.startswith("demo: 8 steps in")


def test_to_device_handles_nesting():
    batch = {"x": torch.ones(2), "pair": (torch.zeros(1), [torch.ones(1)]), "name": "keep"}
    moved = to_device(batch, "cpu")
    assert moved["name"] == "keep" and isinstance(moved["pair"], tuple) and isinstance(moved["pair"][1], list)
    assert to_device(batch, None) is batch


def test_bad_inputs_are_clear():
    model = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="nn.Module"):
        train(lambda x: x, _mse, _line_data())
    with pytest.raises(ValueError, match="epochs"):
        train(model, _mse, _line_data(), epochs=0)
    with pytest.raises(ValueError, match="scalar"):
        train(model, lambda m, b: m(b[0]), _line_data(), progress=False)
    with pytest.raises(ValueError, match="nothing"):
        train(model, _mse, [], progress=False)


def test_seeded_batches_are_the_same_for_a_seed_and_epoch_and_cover_every_row():
    x, y = torch.arange(10), torch.arange(10) * 2
    batches = seeded_batches((x, y), batch_size=4, seed=3)
    first = batches(0)
    assert [len(b[0]) for b in first] == [4, 4, 2]
    assert sorted(torch.cat([b[0] for b in first]).tolist()) == list(range(10))
    assert all(torch.equal(b[1], 2 * b[0]) for b in first)  # rows stay together
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, seeded_batches((x, y), 4, seed=3)(0), strict=True))
    assert not torch.equal(torch.cat([b[0] for b in first]), torch.cat([b[0] for b in batches(1)]))
    with pytest.raises(ValueError, match="batch_size"):
        seeded_batches((x,), batch_size=0)
    with pytest.raises(TypeError, match="tuple of tensors"):
        seeded_batches(([1, 2],))


def test_evaluating_turns_off_training_and_gradients_and_restores_the_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with evaluating(model):
        assert not model.training and not model(torch.ones(1, 2)).requires_grad
    assert model.training
    with pytest.raises(RuntimeError, match="inside"), evaluating(model):
        raise RuntimeError("an error inside the block")
    assert model.training  # restored even after the error
    with evaluating(model.eval()):
        pass
    assert not model.training  # restored to what it was: evaluation mode stays
    with pytest.raises(TypeError, match="nn.Module"), evaluating(lambda x: x):
        pass
