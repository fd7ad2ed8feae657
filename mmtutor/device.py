"""Where tensors live and how runs are made repeatable.

Every notebook starts with::

    seed_everything(0)
    device = get_device()

and creates data and initial weights on the CPU before moving them with ``.to(device)``, so a
CPU run and a GPU run start from the same numbers.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_KNOWN = ("cpu", "cuda", "mps")


def get_device() -> torch.device:
    """The device to compute on: ``$MMTUTOR_DEVICE`` if set, else cuda, else mps, else cpu.

    ``MMTUTOR_DEVICE`` takes any string ``torch.device`` accepts whose type is cpu, cuda or mps
    (``cuda:1`` works). Asking for a device this machine lacks is an error, not a silent fallback: a name
    that is not a device raises ``ValueError``, a device this machine lacks ``RuntimeError``.
    """
    wanted = os.environ.get("MMTUTOR_DEVICE", "").strip()
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError as err:
            raise ValueError(f"MMTUTOR_DEVICE={wanted!r} is not a device name; expected one of {_KNOWN}") from err
        if device.type not in _KNOWN:
            raise ValueError(f"MMTUTOR_DEVICE={wanted!r}: expected a device of type {_KNOWN}, got {device.type!r}")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"MMTUTOR_DEVICE={wanted!r} but torch.cuda.is_available() is False on this machine")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"MMTUTOR_DEVICE={wanted!r} but the MPS backend is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU). A seed that is not an int
    raises ``TypeError``, one outside ``[0, 2**32)`` ``ValueError``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
