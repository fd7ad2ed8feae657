r"""One small, model-agnostic training loop shared by every chapter, and the helpers around it.

A chapter supplies the model, a ``loss_fn(model, batch) -> scalar`` and its batches; :func:`train`
moves each batch to the device, steps the optimiser, shows a progress bar and returns the
loss of every step, so the curve can be plotted and the training time printed.

* :func:`seeded_batches`: ``epoch -> batches`` of rows of some tensors, reshuffled each epoch from a seed;
* :func:`evaluating`: evaluation mode and no gradients inside a ``with`` block, the training mode restored after;
* :func:`to_device`: a batch of nested tensors moved to a device.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._checks import instance, positive_int

Batch = Any
Batches = Iterable[Batch] | Callable[[int], Iterable[Batch]]


class History(list):
    """The loss of every optimisation step (a list of floats) plus the wall time in ``.seconds``."""

    seconds: float = 0.0


def to_device(batch: Batch, device: torch.device | str | None) -> Batch:
    """Move a tensor, or tensors nested in tuples, lists and dicts, to ``device``; leave the rest."""
    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


def seeded_batches(tensors: tuple[Tensor, ...], batch_size: int = 64, seed: int = 0
                   ) -> Callable[[int], list[tuple[Tensor, ...]]]:
    """``epoch -> batches`` of rows of ``tensors`` (all of the same length N), for :func:`train`.

    Reshuffled each epoch with a CPU generator seeded by ``seed + epoch``: the same batches on
    every machine and device. Each batch is a tuple with one slice of every tensor. A ``batch_size`` that
    is not a positive int, anything but a tuple of tensors, or tensors of different lengths raise
    ``ValueError`` / ``TypeError``.
    """
    positive_int("batch_size", batch_size)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"tensors must be a non-empty tuple of tensors, got {type(tensors).__name__}")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"all tensors need the same first size, got {[len(t) for t in tensors]}")

    def batches(epoch: int) -> list[tuple[Tensor, ...]]:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        return [tuple(t[rows] for t in tensors) for rows in order.split(batch_size)]

    return batches


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``with evaluating(model):`` evaluation mode (dropout off, batch norm frozen) and no gradients inside the
    block; the model's training mode is restored afterwards, even after an error. A model that is not an
    ``nn.Module`` raises ``TypeError``."""
    instance("model", model, nn.Module, "an nn.Module")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _progress_enabled(progress: bool | None) -> bool:
    # The book build and the test suite set MMTUTOR_PROGRESS=0: a live bar means nothing on a
    # static page, the one-line summary printed at the end says what matters.
    if progress is not None:
        return progress
    return os.environ.get("MMTUTOR_PROGRESS", "1") != "0"


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
    batches: Batches,
    *,
    epochs: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    device: torch.device | str | None = None,
    grad_clip: float | None = None,
    desc: str = "train",
    progress: bool | None = None,
    verbose: bool = True,
) -> History:
    r"""Minimise ``loss_fn(model, batch)`` over ``epochs`` passes through ``batches``: for each batch,
    $\theta \leftarrow \mathrm{step}(\theta, \nabla_\theta\, \mathrm{loss\_fn}(\mathrm{model}, \mathrm{batch}))$.

    ``model``: any ``nn.Module``, put in training mode (and left there; it is not moved). ``batches``: a
    re-iterable of batches (list, ``DataLoader``) or a function ``epoch -> batches`` (to reshuffle each epoch
    with a seeded generator, :func:`seeded_batches`). ``optimizer`` defaults to ``Adam(model.parameters(),
    lr)``; ``device`` is where each batch is moved before ``loss_fn`` sees it; ``grad_clip`` clips the global
    gradient norm; ``progress`` shows a ``tqdm`` bar (``None`` follows ``$MMTUTOR_PROGRESS``, default on);
    ``verbose`` prints one summary line (steps, seconds, first and last loss) at the end.
    Returns the :class:`History` of every step's loss, with the wall time in ``.seconds``. A model that is not
    an ``nn.Module``, a ``loss_fn`` that is not callable or does not return a scalar, ``epochs`` that is not a
    positive int, and batches that yield nothing raise ``TypeError`` / ``ValueError``.
    """
    instance("model", model, nn.Module, "an nn.Module")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    positive_int("epochs", epochs)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    history = History()
    model.train()
    start = time.perf_counter()
    total = epochs * len(batches) if hasattr(batches, "__len__") and not callable(batches) else None
    with tqdm(desc=desc, unit="step", total=total, disable=not _progress_enabled(progress)) as bar:
        for epoch in range(epochs):
            for batch in batches(epoch) if callable(batches) else batches:
                loss = loss_fn(model, to_device(batch, device))
                if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                    shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
                    raise ValueError(f"loss_fn must return a scalar tensor, got {shape}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                history.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]:.4f}", refresh=False)
    history.seconds = time.perf_counter() - start
    if not history:
        raise ValueError("batches yielded nothing: there was no step to take")
    if verbose:
        print(
            f"{desc}: {len(history)} steps in {history.seconds:.1f} s, "
            f"loss {history[0]:.4f} -> {history[-1]:.4f}"
        )
    return history
