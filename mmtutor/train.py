"""One small, model-agnostic training loop shared by every chapter.

A chapter supplies the model, a ``loss_fn(model, batch) -> scalar`` and its batches; the loop
moves each batch to the device, steps the optimiser, shows a progress bar and returns the
loss of every step, so the curve can be plotted and the training time printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

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
    """Minimise ``loss_fn(model, batch)`` over ``epochs`` passes through ``batches``.

    Args:
        model: any ``nn.Module``; it is put in training mode (and left there).
        loss_fn: maps ``(model, batch)`` to a scalar loss tensor.
        batches: a re-iterable of batches (list, ``DataLoader``) or a function ``epoch -> batches``
            (useful to reshuffle each epoch with a seeded generator).
        epochs: number of passes, >= 1.
        optimizer: defaults to ``Adam(model.parameters(), lr)``.
        device: where each batch is moved before ``loss_fn`` sees it (the model is not moved).
        grad_clip: if set, clip the global gradient norm to this value.
        progress: show a ``tqdm`` bar; ``None`` follows ``$MMTUTOR_PROGRESS`` (default on).
        verbose: print one summary line (steps, seconds, first and last loss) at the end.

    Returns:
        ``History``: the loss of every step, with the wall time in ``.seconds``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
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
