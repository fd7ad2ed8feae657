"""The shared boundary checks: each passes what it should, and fails with the error and the message it promises.

covers: mmtutor._checks
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmtutor._checks import (
    DtypeError,
    bool_mask,
    broadcast,
    broadcasts_to,
    float_tensor,
    has_shape,
    id_tensor,
    instance,
    int_tensor,
    like,
    number,
    one_of,
    positive_int,
    same_dtype_and_device,
    shapes,
)


def test_plain_arguments():
    assert positive_int("n", 3) == 3 and positive_int("n", 0, minimum=0) == 0
    for bad in (0, -2, 2.0, True, "3"):
        with pytest.raises(ValueError, match=r"n must be an int >= 1 \(a positive int\), got"):
            positive_int("n", bad)
    with pytest.raises(ValueError, match="an int >= 2, got 1"):
        positive_int("n", 1, minimum=2)
    assert number("p", 0.5, 0, 1) == 0.5
    with pytest.raises(ValueError, match=r"p must lie in \(0, 1\), got 1"):
        number("p", 1, 0, 1, low_open=True, high_open=True)
    with pytest.raises(TypeError, match="finite number"):
        number("p", float("nan"))
    with pytest.raises(ValueError, match="'a', 'b'; got 'c'"):
        one_of("x", "c", ("a", "b"))
    assert isinstance(instance("m", nn.Linear(1, 1), nn.Module), nn.Linear)
    with pytest.raises(TypeError, match="m must be an nn.Module, got int"):
        instance("m", 3, nn.Module, "an nn.Module")
    with pytest.raises(TypeError, match="c must be an EncoderConfig, got str"):
        instance("c", "x", type("EncoderConfig", (), {}))


def test_shape_strings_fix_the_rank_and_the_named_sizes():
    x = torch.zeros(2, 5, 3)
    assert float_tensor("x", x, "(B, T, H)", H=3) is x
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, H\), got \(5, 3\)$"):
        float_tensor("x", x[0], "(B, T, H)")  # without sizes: today's message, unchanged
    with pytest.raises(ValueError, match=r"\(B, T, H\) = \(B, T, 4\), got \(2, 5, 3\) \(last dimension 4, not 3\)"):
        float_tensor("x", x, "(B, T, H)", H=4)
    with pytest.raises(ValueError, match=r"\(B, T, H\) = \(2, 4, H\), got \(2, 5, 3\) \(T = 4, not 5\)"):
        float_tensor("x", x, "(B, T, H)", B=2, T=4)
    with pytest.raises(ValueError, match=r"\(1, B, H\) = \(1, 2, 3\), got \(2, 5, 3\) \(dimension 0 = 1, not 2\)"):
        has_shape("h", x, "(1, B, H)", B=2, H=3)  # a number in the shape is a fixed size
    assert has_shape("v", torch.zeros(4, 2, 7, 3), "(..., T, d)", d=3).shape == (4, 2, 7, 3)
    with pytest.raises(ValueError, match=r"at least 2 dimensions\), got \(3,\)"):
        has_shape("v", torch.zeros(3), "(..., T, d)")
    with pytest.raises(ValueError, match=r"\(B,\) = \(2,\), got \(3,\)"):
        has_shape("lengths", torch.zeros(3), "(B,)", B=2)  # a one-dimensional shape is one dimension
    with pytest.raises(KeyError, match="not symbols"):
        has_shape("x", x, "(B, T, H)", D=3)  # a typo of the caller, not a bad input


def test_dtype_errors_are_type_and_value_errors():
    with pytest.raises(DtypeError, match="floating-point"):
        float_tensor("x", torch.zeros(2, dtype=torch.long))
    for bad in (torch.tensor([1.0]), torch.tensor([True])):
        for error in (TypeError, ValueError):
            with pytest.raises(error, match="integer dtype.*vocabulary of size 5"):
                id_tensor("ids", bad, 5)
    with pytest.raises(TypeError, match="torch.Tensor of integer ids, got list"):
        id_tensor("ids", [1], 5)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 5\) for a vocabulary of size 5, got 5"):
        id_tensor("ids", torch.tensor([[0, 5]]), 5, "(B, T)")
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4\], got min 0, max 4"):
        int_tensor("lengths", torch.tensor([0, 4]), "(B,)", B=2, low=1, high=4)
    assert int_tensor("n", torch.tensor([-7, 9])).tolist() == [-7, 9]  # no bounds: any integers


def test_several_tensors_share_their_symbols():
    assert shapes("v (B, D), u (B, K, D)", torch.zeros(2, 3), torch.zeros(2, 5, 3)) == {"B": 2, "D": 3, "K": 5}
    with pytest.raises(ValueError, match=r"expected v \(B, D\), u \(B, K, D\); got \(2, 3\), \(2, 5, 4\)"):
        shapes("v (B, D), u (B, K, D)", torch.zeros(2, 3), torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="expected"):
        shapes("c (B,), o (B,)", torch.zeros(2), torch.zeros(3))
    with pytest.raises(TypeError, match="c, o must be tensors, got Tensor, list"):
        shapes("c (B,), o (B,)", torch.zeros(2), [1, 2])


def test_masks_broadcasting_and_devices():
    mask = torch.ones(3, 4, dtype=torch.bool)
    assert bool_mask("mask", mask, torch.device("cpu")) is mask
    with pytest.raises(TypeError, match="torch.bool"):
        bool_mask("mask", mask.float(), "cpu")
    with pytest.raises(ValueError, match="mask is on meta but the data is on cpu"):
        bool_mask("mask", mask.to("meta"), "cpu")
    broadcasts_to("mask", torch.ones(4, dtype=torch.bool), (3, 4))
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3, 4\) does not broadcast to the scores' shape \(3, 4\)"):
        broadcasts_to("mask", torch.ones(2, 3, 4), (3, 4), "the scores' shape")  # it may not grow the scores
    assert broadcast("the leading dimensions", (2, 1), (1, 3)) == (2, 3)
    with pytest.raises(ValueError, match=r"the leading dimensions do not broadcast: \(2,\), \(3,\)"):
        broadcast("the leading dimensions", (2,), (3,))
    x, w = torch.zeros(2), torch.zeros(2, dtype=torch.float64)
    with pytest.raises(TypeError, match="x has dtype torch.float32 but the weights are torch.float64"):
        like("x", x, w)
    with pytest.raises(ValueError, match="x is on meta but the weights are on cpu"):
        like("x", x.to("meta"), x)
    same_dtype_and_device("q, k", x, x)
    with pytest.raises(TypeError, match="q, k must share one dtype, got torch.float32, torch.float64"):
        same_dtype_and_device("q, k", x, w)
    with pytest.raises(ValueError, match="q, k must be on one device, got cpu, meta"):
        same_dtype_and_device("q, k", x, x.to("meta"))


def test_broadcast_rule_equals_torchs():
    # the pure-Python rule behind broadcasts_to and broadcast, on every pair and triple of small shapes
    import random

    from mmtutor._checks import _broadcast_shape

    rng = random.Random(0)
    for _ in range(3000):
        shapes = [tuple(rng.choice([0, 1, 2, 3]) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 3))]
        try:
            expected = tuple(torch.broadcast_shapes(*shapes))
        except RuntimeError:
            expected = None
        assert _broadcast_shape(*shapes) == expected, shapes
    assert broadcast("a and b", (2, 1), (1, 3)) == torch.Size([2, 3])
    with pytest.raises(ValueError, match=r"do not broadcast: \(2,\), \(3,\)"):
        broadcast("a and b", (2,), (3,))
