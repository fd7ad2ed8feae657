r"""Contrastive training across processes: gathered negatives with gradients, and chapter 7's digit model.

With a global batch of ``N`` pairs split over ``W`` ranks, each rank embeds ``B = N / W`` pairs. CLIP's
loss on the local pairs alone compares each image with ``B`` texts; the full-batch loss compares it with
all ``N``. Gathering the embeddings of every rank restores the full logits matrix

$$L = s\, \hat U_{\mathrm{all}} \hat T_{\mathrm{all}}^\top \in \mathbb R^{N \times N},\qquad
  \hat U_{\mathrm{all}} = [\hat U_0; \dots; \hat U_{W-1}],$$

and ``torch.distributed.nn.functional.all_gather`` keeps the gather differentiable: its backward sends
each rank the gradients that every rank computed for that rank's rows and sums them. Every rank computes
the same loss, so rank ``r`` receives ``W`` copies of ``\partial \mathcal L / \partial \hat U_r``, and
DistributedDataParallel's average over ranks divides the ``W`` out again: one step equals one
single-process step on the whole batch.

* :func:`gather_with_grad`, :func:`gathered_clip_loss` (with open_clip's ``local_loss`` variant);
* :func:`digit_model`, :func:`digit_batch`, :func:`freeze_batchnorm`: the model and data of the demos;
* :func:`saved_tensor_bytes`: how much memory autograd keeps for a backward pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import float_tensor, number, positive_int
from ..alignment import ContrastiveModel, clip_loss
from ..encoders import ConvImageEncoder, ImageEncoderConfig, SequenceTextEncoder, TextEncoderConfig


def gather_with_grad(x: Tensor) -> Tensor:
    r"""``[x_0; x_1; \dots; x_{W-1}]``: the rows of every rank, in rank order, with gradients flowing back.

    ``x (B, d)`` on every rank (the same ``B`` everywhere); returns ``(W B, d)``. The backward of rank
    ``r``'s output block is summed over ranks and delivered to rank ``r`` (as open_clip's ``gather_with_grad``).
    """
    float_tensor("x", x, "(B, d)")
    if not dist.is_initialized():
        raise RuntimeError("gather_with_grad needs a process group: call init_from_env() first (under torchrun)")
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.empty_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    if len({int(s) for s in sizes}) != 1:
        raise ValueError(f"every rank must hold the same number of rows, got {[int(s) for s in sizes]}")
    with warnings.catch_warnings():  # torch 2.13 marks it deprecated for a private successor; it is what open_clip uses
        warnings.simplefilter("ignore", FutureWarning)
        parts = dist_fn.all_gather(x.contiguous())  # W tensors (B, d), differentiable
    return torch.cat(parts, dim=0)  # (W B, d)


def gathered_clip_loss(image_emb: Tensor, text_emb: Tensor, logit_scale: Tensor | float,
                       local_loss: bool = False) -> Tensor:
    r"""CLIP's loss over the *global* batch, computed on every rank from its local embeddings ``(B, d)``.

    ``local_loss=False``: the full ``N x N`` logits on every rank; the value equals
    ``clip_loss`` of the whole batch. ``local_loss=True`` (open_clip's option): only this rank's rows,
    ``L_r = s\,\hat U_r \hat T_{\mathrm{all}}^\top`` and ``s\,\hat T_r \hat U_{\mathrm{all}}^\top``, both
    ``(B, N)``, with targets ``r B + i``; the mean of the ranks' losses equals the full loss, each rank
    holds ``B N`` logits instead of ``N^2``, and the gradients after DDP's average are the same.
    """
    float_tensor("image_emb", image_emb, "(B, d)")
    float_tensor("text_emb", text_emb, "(B, d)")
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"image_emb and text_emb must have the same shape (B, d), got {tuple(image_emb.shape)} "
                         f"and {tuple(text_emb.shape)}")
    if not isinstance(logit_scale, Tensor):
        number("logit_scale", logit_scale, 0, low_open=True)
    elif logit_scale.numel() != 1:
        raise ValueError(f"logit_scale must be a number or a scalar tensor, got shape {tuple(logit_scale.shape)}")
    u_all, t_all = gather_with_grad(image_emb), gather_with_grad(text_emb)  # (N, d) each
    if not local_loss:
        return clip_loss(u_all, t_all, logit_scale)
    u, t = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)  # (B, d)
    u_all, t_all = F.normalize(u_all, dim=-1), F.normalize(t_all, dim=-1)  # (N, d)
    image_logits = logit_scale * u @ t_all.T  # (B, N): my images against every text
    text_logits = logit_scale * t @ u_all.T  # (B, N): my texts against every image
    labels = dist.get_rank() * u.shape[0] + torch.arange(u.shape[0], device=u.device)  # my pairs' global rows
    return 0.5 * (F.cross_entropy(image_logits, labels) + F.cross_entropy(text_logits, labels))


# ----------------------------------------------------------------------------- the demos' model and data


def digit_model(seed: int = 0, out_dim: int = 64) -> ContrastiveModel:
    r"""Chapter 7's digit model, built on the CPU from ``seed``: a CNN for 8 x 8 digits and the
    embedding -> LSTM -> attention text tower, both projecting to ``out_dim``."""
    from ..data import digits

    positive_int("out_dim", out_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        image = ConvImageEncoder(ImageEncoderConfig(in_channels=1, image_size=8, widths=(32, 64), hidden=256,
                                                    out_dim=out_dim))
        text = SequenceTextEncoder(TextEncoderConfig(vocab_size=len(digits.VOCAB), embed_size=32, hidden_size=64,
                                                     out_dim=out_dim))
        return ContrastiveModel(image, text)


def digit_batch(n: int = 128, seed: int = 0) -> tuple[Tensor, Tensor]:
    r"""The first ``n`` training digits of chapter 7 (split seed 0) and one caption each (drawn with ``seed``):
    images ``(n, 1, 8, 8)`` and word ids ``(n, 8)``."""
    from ..data import digits

    x, y, _, _ = digits.load_digit_images(test_fraction=0.3, seed=0)
    if not 1 <= positive_int("n", n) <= len(y):
        raise ValueError(f"n must lie in [1, {len(y)}] (the training digits), got {n}")
    ids, _ = digits.encode_digit_texts(digits.digit_captions(y[:n], seed=seed), 8)
    return x[:n], ids


def freeze_batchnorm(model: nn.Module) -> nn.Module:
    r"""Put every batch-norm layer in eval mode (running statistics instead of the batch's); returns ``model``.

    Batch norm couples the samples of a batch like the contrastive loss does: half a batch has other
    statistics than the whole. ``nn.SyncBatchNorm`` all-reduces them, on GPUs only; frozen statistics are
    the other common fix (detection models freeze them when each GPU holds few images).
    """
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.SyncBatchNorm):
            m.eval()
    return model


def saved_tensor_bytes(fn: Callable[[], Tensor]) -> int:
    r"""Bytes of the tensors autograd keeps for the backward of ``fn()`` (each storage counted once).

    This is the activation memory a training step holds between forward and backward; the result of
    ``fn`` itself is counted too.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments returning a tensor, got {type(fn).__name__}")
    storages: dict[tuple, int] = {}

    def keep(t: Tensor) -> Tensor:
        st = t.untyped_storage()
        storages[(t.device.type, st.data_ptr())] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        out = fn()
    if not isinstance(out, Tensor):
        raise TypeError(f"fn() must return a tensor, got {type(out).__name__}")
    st = out.untyped_storage()
    storages[(out.device.type, st.data_ptr())] = st.nbytes()
    return sum(storages.values())
