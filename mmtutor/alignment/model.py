r"""The mapping $\vec v = M(\vec x)$, the learnable temperature, the two-tower model, and how to optimise them.

* :func:`multimodal_mapping`: the original write-up's ``M(x) = model(x)``, with its inputs checked;
* :class:`LogitScale`: the learnable multiplier ``s = 1 / temperature``, stored as ``log s``, clamped as CLIP does
  after each optimiser step (:meth:`LogitScale.clamp_`, :func:`clamp_after_each_step`);
* :class:`ContrastiveModel`: two towers and a temperature;
* :func:`param_groups`: the optimiser's parameter groups, weight decay only on the weight matrices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from .._checks import float_tensor, instance, number


def multimodal_mapping(x: Any, model: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    r"""$\vec v = M(\vec x)$: map data of one modality into the shared space with its ``model``.

    As in the original write-up this is ``model(x)``: the point is that images, texts and sounds each have their
    own ``M`` and all land in the same space. ``x`` must be a tensor with a leading batch dimension and
    ``model`` callable (else ``TypeError`` / ``ValueError``); the result must be a float tensor ``(N, d)`` with
    one row per input (else ``TypeError`` / ``ValueError``).
    """
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module, a function), got {type(model).__name__}")
    if instance("x", x, torch.Tensor, "a torch.Tensor (a batch of inputs)").ndim == 0:
        raise ValueError("x must be a batch with a leading dimension N, got a 0-d tensor")
    return float_tensor("model(x)", model(x), "(N, d)", N=x.shape[0])


class LogitScale(nn.Module):
    r"""The learnable multiplier ``s = 1 / temperature``, stored as $\theta = \log s$ and kept in bounds as CLIP
    keeps it.

    $$s = \exp(\theta),\qquad \theta_0 = \log(1 / 0.07),\qquad
      \theta \leftarrow \mathrm{clamp}(\theta,\ 0,\ \log s_{\max}) \ \text{after every optimiser step}$$

    Learning $\log s$ keeps ``s`` positive and makes its steps relative. CLIP (and open_clip) clamp the
    *parameter* after each step, so that $1 \le s \le s_{\max} = 100$: call :meth:`clamp_` after
    ``optimizer.step()``, or let :func:`clamp_after_each_step` hook it into the optimiser. Clamping only
    the value inside ``forward`` would not do: above the bound the clamp's gradient is 0, so once a step takes
    $\theta$ past $\log s_{\max}$ it gets no gradient and stays there, even when the loss wants a smaller
    scale. ``forward() -> s`` (0-d) still clamps the value, as a guard that keeps ``s <= max_scale`` if
    :meth:`clamp_` is never called; with :meth:`clamp_` after every step, $\theta$ is always within the bounds,
    where that clamp is the identity with gradient 1 (also at the bound itself), so the training is CLIP's. A
    ``max_scale`` below 1, or an ``init_temperature`` outside ``[1 / max_scale, 1]``, raises ``ValueError``.
    """

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        number("init_temperature", init_temperature, 1.0 / number("max_scale", max_scale, 1.0), 1.0)
        self.max_log = math.log(max_scale)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(0.0, self.max_log).exp()

    @torch.no_grad()
    def clamp_(self) -> LogitScale:
        r"""CLIP's step after ``optimizer.step()``: $\theta \leftarrow \mathrm{clamp}(\theta, 0, \log s_{\max})$,
        in place. Returns the module."""
        self.log_scale.clamp_(0.0, self.max_log)
        return self


def clamp_after_each_step(optimizer: torch.optim.Optimizer, model: nn.Module) -> RemovableHandle:
    r"""Make ``optimizer`` call :meth:`LogitScale.clamp_` on every :class:`LogitScale` of ``model`` after each of
    its steps (a step post-hook), so that any training loop, :func:`mmtutor.train` included, clamps as CLIP's
    does. Returns the hook's handle (``.remove()`` undoes it). Anything but an optimiser and a module, or a model
    without a ``LogitScale``, raises ``TypeError`` / ``ValueError``.
    """
    instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    scales = [m for m in instance("model", model, nn.Module, "an nn.Module").modules() if isinstance(m, LogitScale)]
    if not scales:
        raise ValueError("model has no LogitScale to clamp")

    def clamp(opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        for scale in scales:
            scale.clamp_()

    return optimizer.register_step_post_hook(clamp)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    r"""The two parameter groups CLIP and open_clip give AdamW: weight decay on the weight matrices only.

    Weight decay shrinks every decayed parameter towards 0 by ``lr * weight_decay`` of itself at each step, a
    pull towards small weights that suits the matrices of linear, convolution, embedding and LSTM layers. It
    does not suit parameters whose zero means something else: a bias, a normalisation's scale (0 switches the
    feature off), and above all $\log s$ (decaying it pulls the temperature towards ``s = 1``, a choice no one
    made). The rule, open_clip's: a parameter with fewer than 2 dimensions is not decayed. Returns
    ``[{"params": matrices, "weight_decay": weight_decay}, {"params": the rest, "weight_decay": 0.0}]`` with
    the parameters that require gradients (a frozen tower is left out), for
    ``torch.optim.AdamW(param_groups(model, 0.1), lr=...)``. A ``weight_decay`` below 0 or a model that is not an
    ``nn.Module`` raises ``ValueError`` / ``TypeError``.
    """
    instance("model", model, nn.Module, "an nn.Module")
    number("weight_decay", weight_decay, 0.0)
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class ContrastiveModel(nn.Module):
    r"""Two towers and a temperature: ``x_encoder`` for images or sounds, ``text_encoder`` for words.

    ``forward(x, ids) -> (v_x (N, d), v_t (N, d), s)`` with unit-length rows. With
    ``train_text=False`` the text tower is frozen (its parameters stop needing gradients), which is
    how a new modality is bound to an existing text space (LiT, ImageBind). A tower that is not an
    ``nn.Module`` raises ``TypeError``.
    """

    def __init__(self, x_encoder: nn.Module, text_encoder: nn.Module, init_temperature: float = 0.07,
                 max_scale: float = 100.0, train_text: bool = True) -> None:
        super().__init__()
        self.x_encoder = instance("x_encoder", x_encoder, nn.Module, "an nn.Module")
        self.text_encoder = instance("text_encoder", text_encoder, nn.Module, "an nn.Module")
        self.logit_scale = LogitScale(init_temperature, max_scale)
        if not train_text:
            text_encoder.requires_grad_(False)

    def embed_x(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(multimodal_mapping(x, self.x_encoder), dim=-1)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(multimodal_mapping(ids, self.text_encoder), dim=-1)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.embed_x(x), self.embed_text(ids), self.logit_scale()
