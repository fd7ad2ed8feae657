"""get_device and seed_everything (DESIGN.md section 4).

covers: mmtutor.device
"""

import random

import numpy as np
import pytest
import torch

from mmtutor import get_device, seed_everything


def test_env_variable_is_honoured(monkeypatch):
    monkeypatch.setenv("MMTUTOR_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_default_order_without_env(monkeypatch):
    monkeypatch.delenv("MMTUTOR_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert get_device().type == expected


@pytest.mark.parametrize("name", ["gpu", "tpu", "cpu:x"])
def test_bad_device_name_is_a_clear_error(monkeypatch, name):
    monkeypatch.setenv("MMTUTOR_DEVICE", name)
    with pytest.raises(ValueError, match="MMTUTOR_DEVICE"):
        get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setenv("MMTUTOR_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="cuda"):
        get_device()


def test_seed_everything_repeats_python_numpy_and_torch():
    seed_everything(123)
    first = (random.random(), np.random.rand(3), torch.randn(3))
    seed_everything(123)
    second = (random.random(), np.random.rand(3), torch.randn(3))
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert torch.equal(first[2], second[2])
    seed_everything(124)
    assert not torch.equal(torch.randn(3), second[2])


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_seed(seed, error):
    with pytest.raises(error, match="seed"):
        seed_everything(seed)
