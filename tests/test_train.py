"""The shared training loop."""

import pytest
import torch
from torch import nn

from mmtutor.train import History, to_device, train


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
