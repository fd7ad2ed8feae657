r"""Processes, ranks and the process group: starting ``torch.distributed`` and launching it with torchrun.

A distributed job is ``W`` processes (the *world*), each with a *rank* ``0 .. W-1``, that meet at one
address (``MASTER_ADDR:MASTER_PORT``) and then talk through a *backend*: ``gloo`` on CPUs, ``nccl``
between NVIDIA GPUs (one GPU per process). ``torchrun`` (``python -m torch.distributed.run``) starts the
processes and tells each its rank through environment variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).

* :func:`choose_backend`, :func:`rank_device`: nccl when every rank can have a GPU of its own, else gloo on CPU;
* :func:`init_from_env` / :func:`shutdown`: join and leave the process group inside a rank;
* :func:`free_port`, :func:`torchrun_command`, :func:`run_command`: launch from outside (a notebook, a test)
  and always clean up, also when a rank fails or the launch runs out of time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .._checks import number, positive_int
from ..device import get_device

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def choose_backend(device: torch.device | None = None, world_size: int = 1) -> str:
    r"""``"nccl"`` if ``device`` (default :func:`mmtutor.get_device`) is CUDA and there is one GPU per rank,
    else ``"gloo"`` (CPU tensors; works everywhere). NCCL refuses two ranks on one GPU."""
    positive_int("world_size", world_size)
    device = get_device() if device is None else torch.device(device)
    if device.type == "cuda" and dist.is_nccl_available() and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def rank_device(backend: str, local_rank: int) -> torch.device:
    r"""Where a rank keeps its tensors: its own GPU ``cuda:local_rank`` under nccl, the CPU under gloo."""
    return torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")


def loopback_interface() -> str | None:
    r"""The name of this machine's loopback network interface (``lo`` on Linux, ``lo0`` on macOS), or None."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except (OSError, AttributeError):  # not offered on every platform
        return None
    return next((name for name in names if name in ("lo", "lo0")), next((n for n in names if n.startswith("lo")), None))


@dataclass(frozen=True)
class Context:
    r"""What a rank knows about itself once the process group is up."""

    rank: int  # 0 .. world_size - 1, unique in the job
    world_size: int  # W, the number of processes
    local_rank: int  # rank among the processes of this machine (which GPU to take)
    backend: str  # "gloo" or "nccl"
    device: torch.device  # where this rank's tensors live


def _exit_when_orphaned(poll_s: float = 0.5) -> None:
    """A daemon thread: if the launcher dies without stopping us (SIGKILL), stop too instead of waiting forever.

    Only under torchrun (``TORCHELASTIC_RUN_ID`` set), whose agent is our parent. A launcher that died before
    this thread started goes unnoticed (unless we were handed to init, pid 1); the collectives' timeout then ends
    the rank.
    """
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    parent = os.getppid()
    if parent == 1:
        os._exit(3)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="orphan-watchdog", daemon=True).start()


def init_from_env(backend: str | None = None, timeout_s: float = 60.0) -> Context:
    r"""Join the process group described by torchrun's environment variables; returns this rank's :class:`Context`.

    ``backend`` defaults to :func:`choose_backend`. Collectives that wait longer than ``timeout_s`` fail
    instead of hanging. When the ranks meet on a loopback address, gloo is told to use the loopback
    interface (``GLOO_SOCKET_IFNAME``), so nothing leaves the machine. Raises ``RuntimeError`` when the
    variables are missing (the script was not started by torchrun).
    """
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not set: start this script with "
                           "python -m torch.distributed.run --nproc_per_node=2 ...")
    number("timeout_s", timeout_s, 0, low_open=True)
    world_size, local_rank = int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    backend = choose_backend(None, world_size) if backend is None else backend
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if os.environ["MASTER_ADDR"] in _LOOPBACK and "GLOO_SOCKET_IFNAME" not in os.environ:
        interface = loopback_interface()
        if interface:
            os.environ["GLOO_SOCKET_IFNAME"] = interface
    device = rank_device(backend, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    _exit_when_orphaned()
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, backend, device)


def shutdown() -> None:
    r"""Leave the process group (safe to call twice, or when it never started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- launching from outside


def free_port(host: str = "127.0.0.1") -> int:
    r"""A TCP port that is free right now: bind port 0 and let the operating system choose."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def torchrun_command(module: str, nproc: int, args: Sequence[str] = (), port: int | None = None,
                     master_addr: str = "127.0.0.1") -> list[str]:
    r"""``[python, -m, torch.distributed.run, --nproc_per_node=W, ..., -m, module, *args]`` for one machine.

    A fixed rendezvous (``--master_addr``, ``--master_port``, one node) on loopback: nothing leaves the
    machine and no name is looked up. ``port`` defaults to :func:`free_port`.
    """
    positive_int("nproc", nproc)
    if not isinstance(module, str) or not module:
        raise ValueError(f"module must be a module name such as 'mmtutor.distributed.launch', got {module!r}")
    port = free_port(master_addr) if port is None else positive_int("port", port)
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={nproc}",
            f"--master_addr={master_addr}", f"--master_port={port}", "-m", module, *map(str, args)]


def run_command(command: Sequence[str], timeout_s: float = 120.0, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess:
    r"""Run a launch and return its exit code, stdout and stderr (text); never leave a process behind.

    Like ``subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)``, but on a timeout
    the launcher first gets SIGTERM (torchrun then stops its ranks) and SIGKILL only if it does not exit;
    the ranks stop by themselves when their launcher is gone. Each rank gets one CPU thread
    (``OMP_NUM_THREADS=1``) unless ``env`` says otherwise. Raises ``subprocess.TimeoutExpired`` after the
    clean-up, with what the launch printed so far.
    """
    number("timeout_s", timeout_s, 0, low_open=True)
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        out, err = "", ""
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        raise subprocess.TimeoutExpired(list(command), timeout_s, output=out, stderr=err) from None
    return subprocess.CompletedProcess(list(command), proc.returncode, out, err)
