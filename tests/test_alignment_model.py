"""Chapter 7's model pieces: M(x), the learnable temperature clamped as CLIP does, the two towers, weight decay.

covers: mmtutor.alignment.model
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmtutor import multimodal_mapping
from mmtutor.alignment import (
    ContrastiveModel,
    LogitScale,
    clamp_after_each_step,
    clip_loss,
    param_groups,
)
from mmtutor.encoders import BagOfWordsEncoder, ConvImageEncoder, ImageEncoderConfig, TextEncoderConfig

# ----------------------------------------------------------------------- temperature, model, M(x)


def test_logit_scale_starts_at_one_over_0_07_and_is_clamped_at_100() -> None:
    scale = LogitScale()
    assert scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    scale().backward()
    assert scale.log_scale.grad.item() == pytest.approx(1 / 0.07, rel=1e-5)  # d exp(x)/dx = exp(x)
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    assert scale().item() == pytest.approx(100.0, rel=1e-5)
    with pytest.raises(ValueError, match="init_temperature"):
        LogitScale(init_temperature=0.0)


def test_multimodal_mapping_is_model_of_x_with_checks() -> None:
    model = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    torch.testing.assert_close(multimodal_mapping(x, model), model(x))
    with pytest.raises(TypeError, match="callable"):
        multimodal_mapping(x, "not a model")
    with pytest.raises(TypeError, match="torch.Tensor"):
        multimodal_mapping([1, 2], model)
    with pytest.raises(ValueError, match=r"\(4, d\)"):
        multimodal_mapping(x, lambda a: a.sum())


def test_contrastive_model_gives_unit_vectors_and_can_freeze_the_text_tower() -> None:
    torch.manual_seed(0)
    text = BagOfWordsEncoder(TextEncoderConfig(vocab_size=10, out_dim=8))
    model = ContrastiveModel(nn.Linear(5, 8), text)
    vx, vt, s = model(torch.randn(3, 5), torch.tensor([[1, 2, 0], [3, 0, 0], [4, 5, 6]]))
    torch.testing.assert_close(vx.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(vt.norm(dim=1), torch.ones(3))
    assert s.item() == pytest.approx(1 / 0.07, rel=1e-5)
    ContrastiveModel(nn.Linear(5, 8), text, train_text=False)
    assert not any(p.requires_grad for p in text.parameters())




# ------------------------------------------------------------------- the clamp after each optimiser step


def overshoot_then_want_less(hook: bool, steps: int = 30) -> list[float]:
    """log s starts above the bound (a step overshot); the loss then wants a smaller scale: s * 1 on
    misaligned pairs grows with s. Returns log s after each Adam step."""
    scale = LogitScale()
    with torch.no_grad():
        scale.log_scale.fill_(math.log(100.0) + 0.5)
    optimizer = torch.optim.Adam(scale.parameters(), lr=0.05)
    if hook:
        clamp_after_each_step(optimizer, scale)
    u = torch.eye(4)
    trajectory = []
    for _ in range(steps):
        loss = clip_loss(u, u.roll(1, dims=0), scale())  # every pair wrong: a larger scale costs more
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        trajectory.append(scale.log_scale.item())
    return trajectory


def test_the_forward_clamp_alone_has_no_gradient_above_the_bound_and_stays_stuck() -> None:
    scale = LogitScale()
    with torch.no_grad():
        scale.log_scale.fill_(7.0)
    scale().backward()
    assert scale.log_scale.grad.item() == 0.0
    stuck = overshoot_then_want_less(hook=False)
    assert all(x == pytest.approx(math.log(100.0) + 0.5) for x in stuck)


def test_clamping_the_parameter_after_each_step_lets_the_scale_come_back() -> None:
    trajectory = overshoot_then_want_less(hook=True)
    assert max(trajectory) <= math.log(100.0) + 1e-6  # float32 rounding of log 100
    assert trajectory[-1] < math.log(100.0) - 0.5  # the loss wanted less and got it


def test_our_training_is_clips_exp_then_clamp_after_the_step() -> None:
    # CLIP's rule written out: s = exp(theta) (no clamp in forward), theta clamped in place after each step.
    torch.manual_seed(0)
    u, t = torch.randn(16, 8), torch.randn(16, 8)
    u = u + 3 * t  # pairs that agree: the loss wants a large scale, so theta runs into the bound
    ours = LogitScale()
    optimizer = torch.optim.Adam(ours.parameters(), lr=0.3)
    handle = clamp_after_each_step(optimizer, ours)
    theta = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    clip_optimizer = torch.optim.Adam([theta], lr=0.3)
    hit_bound = False
    for _ in range(25):
        for opt, s in ((optimizer, ours()), (clip_optimizer, theta.exp())):
            opt.zero_grad()
            clip_loss(u, t, s).backward()
            opt.step()
        with torch.no_grad():
            theta.clamp_(0, math.log(100))
        torch.testing.assert_close(ours.log_scale.detach(), theta.detach())
        hit_bound |= theta.item() == pytest.approx(math.log(100))
    assert hit_bound
    handle.remove()
    with torch.no_grad():
        ours.log_scale.fill_(9.0)
    optimizer.zero_grad()
    optimizer.step()  # no gradient, so no move, and no hook any more: nothing clamps
    assert ours.log_scale.item() == 9.0
    assert ours.clamp_().log_scale.item() == pytest.approx(math.log(100))


def test_clamp_after_each_step_checks_its_arguments() -> None:
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no LogitScale"):
        clamp_after_each_step(optimizer, nn.Linear(2, 2))
    with pytest.raises(TypeError, match="optimizer"):
        clamp_after_each_step("adam", LogitScale())


# ---------------------------------------------------------------------------------------- weight decay


def scene_like_model() -> ContrastiveModel:
    torch.manual_seed(0)
    image = ConvImageEncoder(ImageEncoderConfig(in_channels=1, image_size=8, widths=(4, 8), hidden=16, out_dim=6))
    return ContrastiveModel(image, BagOfWordsEncoder(TextEncoderConfig(vocab_size=10, embed_size=4, out_dim=6)))


def test_param_groups_decay_the_matrices_only() -> None:
    model = scene_like_model()
    decay, rest = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in rest["params"]}
    assert decayed | kept == set(names.values()) and not decayed & kept
    assert "logit_scale.log_scale" in kept
    norms = {f"{m}.weight" for m, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)}
    assert norms and kept == norms | {n for n in names.values() if n.endswith("bias")} | {"logit_scale.log_scale"}
    assert {"text_encoder.embedding.weight", "x_encoder.features.0.weight"} <= decayed
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in rest["params"])


def test_adamw_with_the_groups_shrinks_matrices_and_leaves_the_rest() -> None:
    model = scene_like_model()
    optimizer = torch.optim.AdamW(param_groups(model, 0.5), lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decay can move a parameter
    optimizer.step()
    for n, p in model.named_parameters():
        factor = 1 - 0.1 * 0.5 if p.ndim >= 2 else 1.0
        torch.testing.assert_close(p.detach(), before[n] * factor)


def test_param_groups_leave_out_a_frozen_tower_and_check_arguments() -> None:
    text = BagOfWordsEncoder(TextEncoderConfig(vocab_size=10, embed_size=4, out_dim=6))
    model = ContrastiveModel(nn.Linear(3, 6), text, train_text=False)
    groups = param_groups(model, 0.1)
    assert sum(len(g["params"]) for g in groups) == 3  # the linear layer's weight and bias, and log s
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(model, -0.1)
    with pytest.raises(TypeError, match="nn.Module"):
        param_groups([nn.Parameter(torch.ones(2, 2))], 0.1)
