r"""Chapter 10: scaling out with ``torch.distributed``, contrastive training and exact search across processes.

* :mod:`.process`: backends, ranks and the process group; launching torchrun from a notebook or a test;
* :mod:`.contrastive`: CLIP's loss with the embeddings of every rank gathered with gradients;
  chapter 7's digit model for the data-parallel demos;
* :mod:`.search`: a database sharded over ranks, partial top-k lists merged on rank 0;
* :mod:`.cost`: bytes on the wire, the alpha-beta model, a billion-vector paper estimate;
* :mod:`.pictures`: who holds what before and after a collective, where a step's time goes;
* :mod:`.launch`: the demos every rank runs (``python -m torch.distributed.run ... -m mmtutor.distributed.launch``).
"""

from __future__ import annotations

from .contrastive import (
    digit_batch,
    digit_model,
    freeze_batchnorm,
    gather_with_grad,
    gathered_clip_loss,
    saved_tensor_bytes,
)
from .cost import (
    all_gather_bytes,
    all_reduce_bytes,
    all_reduce_seconds,
    data_parallel_step,
    fit_latency_bandwidth,
    negatives_per_sample,
    search_estimate,
)
from .process import (
    Context,
    choose_backend,
    free_port,
    init_from_env,
    loopback_interface,
    rank_device,
    run_command,
    shutdown,
    torchrun_command,
)
from .search import SEARCH_BLOCK, local_topk, merge_topk, shard_bounds, sharded_topk_search, tie_heavy_vectors

__all__ = [
    "Context", "SEARCH_BLOCK", "all_gather_bytes", "all_reduce_bytes", "all_reduce_seconds", "choose_backend",
    "data_parallel_step", "digit_batch", "digit_model", "fit_latency_bandwidth", "free_port", "freeze_batchnorm",
    "gather_with_grad", "gathered_clip_loss", "init_from_env", "local_topk", "loopback_interface", "merge_topk",
    "negatives_per_sample", "rank_device", "run_command", "saved_tensor_bytes", "search_estimate", "shard_bounds",
    "sharded_topk_search", "shutdown", "tie_heavy_vectors", "torchrun_command",
]
