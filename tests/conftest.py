"""Test-run set-up shared by the unit tests, the notebooks (nbval) and the book build.

* The network is blocked for this process and every Python child (notebook kernels, the book
  build) through ``tests/offline/sitecustomize.py``; a test during which any process tried to
  reach the network fails, even if the code caught the error.
* Hugging Face libraries are told they are offline; progress bars are off (logs stay readable).
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from pathlib import Path

import pytest

OFFLINE = Path(__file__).parent / "offline"
NETLOG = Path(tempfile.gettempdir()) / f"mmtutor-netlog-{os.getpid()}.txt"

os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OFFLINE), os.environ.get("PYTHONPATH")]))
os.environ["MMTUTOR_NETLOG"] = str(NETLOG)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MMTUTOR_PROGRESS", "0")
NETLOG.write_text("")
atexit.register(NETLOG.unlink, missing_ok=True)
sys.path.insert(0, str(OFFLINE))
import sitecustomize  # noqa: E402,F401  (this process too; children import it at start-up)

if Path(sitecustomize.__file__).parent != OFFLINE:  # another sitecustomize shadowed ours
    import importlib.util

    _spec = importlib.util.spec_from_file_location("mmtutor_offline", OFFLINE / "sitecustomize.py")
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Fail any test (unit test or notebook cell) during which something tried to use the network."""
    if call.when == "setup":
        item.stash[_NETLOG_START] = NETLOG.stat().st_size if NETLOG.exists() else 0
    outcome = yield
    if call.when == "call":
        start = item.stash.get(_NETLOG_START, 0)
        text = NETLOG.read_bytes()[start:].decode(errors="replace") if NETLOG.exists() else ""
        if text.strip():
            report = outcome.get_result()
            report.outcome = "failed"
            report.longrepr = f"network access attempted during this test (blocked):\n{text}"


_NETLOG_START = pytest.StashKey[int]()


@pytest.fixture(autouse=True)
def _fresh_exercise_attempts(request: pytest.FixtureRequest) -> None:
    """Each test of a chapter's exercise checks starts with no failed attempts (the checks stage their hints by
    attempt, so a test must not see another's failures)."""
    if request.path.name.startswith("test_exercises"):
        from mmtutor.exercises import reset_attempts

        reset_attempts()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module, restored after: checks that run many small tensor operations are much
    faster on one thread, above all on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
