r"""faiss and torch in one process: the guard against their two OpenMP runtimes (private; chapters 6 and 10).

The pip wheels of torch and faiss-cpu each bundle their own OpenMP runtime. On macOS the second copy to load
either aborts the process ("OMP: Error #15: Initializing libomp.dylib, but found libomp.dylib already
initialized") or crashes later inside a parallel region (faiss-wheels issue 73, faiss issue 2463, txtai's
macOS fix). The known workaround, applied here on macOS only: import torch first, let the second runtime
load (``KMP_DUPLICATE_LIB_OK=TRUE``, unless the environment already says otherwise), and run faiss's OpenMP
loops on one thread, so that its runtime never starts the worker threads that crash. On Linux and Windows
nothing changes: faiss keeps all its threads.

``import_faiss()`` is the one place that imports faiss for the notebooks; it returns the module, or ``None``
when faiss is not installed (the comparisons with faiss are then skipped).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

CLASHING_PLATFORMS = ("darwin",)  # where two OpenMP runtimes in one process are known to crash


def import_faiss() -> ModuleType | None:
    r"""``faiss``, imported so that it can share the process with torch, or ``None`` if it is not installed.

    On macOS: torch is imported first, ``KMP_DUPLICATE_LIB_OK`` defaults to ``TRUE``, and
    ``faiss.omp_set_num_threads(1)`` (compare faiss with torch on one thread there). Elsewhere faiss is imported
    as it is. Raises nothing of its own; an ``ImportError`` raised from inside an installed faiss propagates.
    """
    import torch  # noqa: F401 - torch's runtime first: the order the workaround was tested in

    clash = sys.platform in CLASHING_PLATFORMS
    if clash:
        os.environ.setdefault("KMP_DUPLICATE_LIB_OK", "TRUE")
    try:
        faiss = importlib.import_module("faiss")
    except ModuleNotFoundError as err:
        if err.name != "faiss":
            raise
        return None
    if clash:
        faiss.omp_set_num_threads(1)
    return faiss
