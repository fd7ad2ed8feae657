r"""Chapter 10's exercises (scaling out): the references, hidden probes and typical wrong answers live here.

The notebook's check cells are one line each, ``ch10.check_<what>(answer)``:

* exercise 1, :func:`check_merge_topk` (warm-up, :func:`~mmtutor.exercises.check_function`): merge per-shard
  top-k lists that arrive in any order, against :func:`mmtutor.distributed.search.merge_topk` on tie-heavy data;
* exercise 2, :func:`check_negatives` (reason, then count): the negatives one image sees with and without
  gathering, against :func:`mmtutor.distributed.cost.negatives_per_sample`;
* exercise 3, :func:`check_gather_traffic` (predict the traffic): the bytes each rank receives in the two
  all-gathers of the gathered loss, against :func:`mmtutor.distributed.cost.all_gather_bytes`; the feedback
  compares them with the digit model's gradient all-reduce;
* exercise 4, :func:`check_shard_bounds` (change, then break on purpose,
  :func:`~mmtutor.exercises.check_properties`): shard bounds that keep a sharded search bit for bit equal to the
  single-process one.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch

from mmtutor.distributed.contrastive import digit_model
from mmtutor.distributed.cost import all_gather_bytes, all_reduce_bytes, negatives_per_sample
from mmtutor.distributed.search import SEARCH_BLOCK, local_topk, merge_topk, tie_heavy_vectors
from mmtutor.exercises import check_function, check_properties, exercise
from mmtutor.similarity import topk_search

# --- Exercise 1: merge per-shard top-k lists --------------------------------------------------------------------

ARRIVAL_ORDER = ("equal scores must come by the smaller index whatever order the lists arrive in: one stable sort "
                 "by score keeps the arrival order of ties")
LARGER_INDEX = "equal scores come by the larger index: the smaller index goes first"
ASCENDING = "the scores should be in descending order, the best first"


def _one_stable_sort(scores: list[torch.Tensor], indices: list[torch.Tensor], k: int) -> tuple[torch.Tensor, ...]:
    s, i = torch.cat(scores, dim=1), torch.cat(indices, dim=1)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    return s.gather(1, order), i.gather(1, order)


def _larger_index(scores: list[torch.Tensor], indices: list[torch.Tensor], k: int) -> tuple[torch.Tensor, ...]:
    s, i = torch.cat(scores, dim=1), torch.cat(indices, dim=1)
    by_index = torch.sort(i, dim=1, descending=True, stable=True).indices
    s, i = s.gather(1, by_index), i.gather(1, by_index)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    return s.gather(1, order), i.gather(1, order)


def _ascending(scores: list[torch.Tensor], indices: list[torch.Tensor], k: int) -> tuple[torch.Tensor, ...]:
    s, i = merge_topk(scores, indices, k)
    return s.flip(1), i.flip(1)


def _shard_lists(generator: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor], int]:
    """Tie-heavy queries and database (every score a multiple of 1/4), cut into 2..5 shards at random rows (some
    short enough to pad), their local top-k lists in a random order (as the shards answered)."""
    n, k = int(torch.randint(50, 400, (1,), generator=generator)), int(torch.randint(1, 12, (1,), generator=generator))
    q = tie_heavy_vectors(20, 16, seed=int(torch.randint(1000, (1,), generator=generator)))
    x = tie_heavy_vectors(n, 16, seed=int(torch.randint(1000, (1,), generator=generator)))
    cuts = sorted(torch.randint(0, n, (int(torch.randint(1, 5, (1,), generator=generator)),),
                                generator=generator).tolist())
    lists = [local_topk(q, x[a:b], k, offset=a) for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    lists = [lists[j] for j in torch.randperm(len(lists), generator=generator).tolist()]
    return [s for s, _ in lists], [i for _, i in lists], k


@exercise(1, tests="merging partial top-k lists into the global top k, ordered as topk_search orders them (score "
                   "descending, ties by the smaller index), when the lists arrive in any order (a warm-up: "
                   "section 4 shows the two sorts)",
          wrong_answers={"one stable sort by score only": ARRIVAL_ORDER, "ties by the larger index": LARGER_INDEX,
                         "ascending scores": ASCENDING})
def check_merge_topk(my_merge_topk: Any) -> None:
    r"""Exercise 1: ``my_merge_topk(scores, indices, k)``: lists of ``(Q, k)`` scores and global indices, one per
    shard, in any order (a short shard padded with score ``-inf`` and index ``-1``), merged into the ``(Q, k)``
    best overall. Checked against :func:`~mmtutor.distributed.search.merge_topk` on 6 hidden tie-heavy inputs."""
    __tracebackhide__ = True
    check_function("Exercise 1", my_merge_topk, merge_topk, _shard_lists, trials=6, atol=0, rtol=0,
                   mistakes=[(ASCENDING, _ascending), (LARGER_INDEX, _larger_index),
                             (ARRIVAL_ORDER, _one_stable_sort)],
                   hints=("put every shard's candidates side by side (torch.cat along the k dimension)",
                          "a stable sort keeps the order that equal keys already had: decide which order equal "
                          "scores must have before you sort by score",
                          "two sorts do it: the last one decides the main order (by score), the one before it "
                          "the order among equal scores (by index, padding last)"))


# --- Exercise 2: how many negatives? ----------------------------------------------------------------------------

POSITIVE_COUNTED = "you counted the image's own text too: it is the positive, not a negative"
SWAPPED = "gathered and local are swapped: gathering gives each image the texts of every rank"
WHOLE_BATCH = "without gathering a rank sees only its own N / W texts"


def _batch_split(generator: torch.Generator) -> tuple[int, int, bool]:
    world = int(torch.randint(1, 257, (1,), generator=generator))
    return world * int(torch.randint(2, 129, (1,), generator=generator)), world, bool(torch.randint(2, (1,),
                                                                                                     generator=generator))


@exercise(2, tests="counting the negatives of CLIP's loss on a sharded batch: N - 1 when the embeddings are "
                   "gathered, N / W - 1 when each rank keeps its own",
          wrong_answers={"counts the positive as a negative": POSITIVE_COUNTED, "swaps the two cases": SWAPPED,
                         "ignores the split without gathering": WHOLE_BATCH})
def check_negatives(my_negatives: Any) -> None:
    r"""Exercise 2: ``my_negatives(global_batch, world_size, gathered)``, the negatives one image sees in the
    image-to-text half of CLIP's loss; checked against :func:`~mmtutor.distributed.cost.negatives_per_sample` on
    10 hidden splits. After a pass, the feedback gives CLIP's numbers (32,768 pairs on 256 GPUs)."""
    __tracebackhide__ = True
    local = lambda n, w, g: n // w - 1  # noqa: E731
    check_function("Exercise 2", my_negatives, negatives_per_sample, _batch_split, trials=10, atol=0, rtol=0,
                   mistakes=[(POSITIVE_COUNTED, lambda n, w, g: n if g else n // w),
                             (WHOLE_BATCH, lambda n, w, g: n - 1),
                             (SWAPPED, lambda n, w, g: local(n, w, g) if g else n - 1)],
                   hints=("an image is compared with every text its loss sees; one of them is its own caption",
                          "with the embeddings gathered, the loss of every rank sees all N texts; without, only "
                          "the texts of its own shard"),
                   feedback=f"(CLIP's batch of 32,768 pairs on 256 GPUs: {negatives_per_sample(32768, 256, False)} "
                            f"negatives per image locally, {negatives_per_sample(32768, 256, True):,} gathered.)")


# --- Exercise 3: the traffic of the gathered loss ---------------------------------------------------------------

OWN_BLOCK = "a rank already holds its own block: it receives the blocks of the other W - 1 ranks"
ONE_MODALITY = "the loss gathers two blocks per rank, the image embeddings and the text embeddings"
ELEMENTS = "that is a number of floats: a float32 takes 4 bytes"
DOUBLE = "the embeddings are float32, 4 bytes each, not 8"


def _gather_sizes(generator: torch.Generator) -> tuple[int, int, int]:
    return tuple(int(torch.randint(lo, hi, (1,), generator=generator)) for lo, hi in ((1, 512), (8, 1025), (2, 65)))


def _received(local_batch: int, dim: int, world_size: int) -> int:
    return 2 * all_gather_bytes(local_batch * dim * 4, world_size)


@exercise(3, tests="predicting the bytes of a collective: an all-gather of (B, d) float32 blocks brings each rank "
                   "the W - 1 blocks of the others, twice (images and texts)",
          wrong_answers={"counts its own block": OWN_BLOCK, "one modality only": ONE_MODALITY,
                         "counts floats, not bytes": ELEMENTS, "8 bytes per float": DOUBLE})
def check_gather_traffic(my_gather_traffic: Any) -> None:
    r"""Exercise 3: ``my_gather_traffic(local_batch, dim, world_size)``, the bytes each rank receives in the two
    all-gathers of one forward pass of ``gathered_clip_loss``; checked against
    :func:`~mmtutor.distributed.cost.all_gather_bytes` on 6 hidden sizes. After a pass, the feedback compares the
    gathers with the all-reduce of the digit model's gradients at 2 and 4 ranks."""
    __tracebackhide__ = True
    grad_bytes = 4 * sum(p.numel() for p in digit_model(seed=0).parameters())
    gathers = {w: _received(64, 64, w) for w in (2, 4)}
    reduces = {w: all_reduce_bytes(grad_bytes, w) for w in (2, 4)}
    check_function("Exercise 3", my_gather_traffic, _received, _gather_sizes, trials=6, atol=0, rtol=0,
                   mistakes=[(OWN_BLOCK, lambda b, d, w: 2 * w * b * d * 4),
                             (ONE_MODALITY, lambda b, d, w: (w - 1) * b * d * 4),
                             (ELEMENTS, lambda b, d, w: 2 * (w - 1) * b * d),
                             (DOUBLE, lambda b, d, w: 2 * (w - 1) * b * d * 8)],
                   hints=("one rank's block is local_batch x dim float32 numbers, 4 bytes each",
                          "an all-gather brings every rank the blocks it does not hold yet",
                          "the loss gathers the image embeddings and the text embeddings: two all-gathers"),
                   feedback=f"(The digit model at 64 pairs per rank, dimension 64: the gathers bring "
                            f"{gathers[2] / 1e3:.0f} kB at 2 ranks and {gathers[4] / 1e3:.0f} kB at 4, growing with "
                            f"W - 1; the gradient all-reduce sends {reduces[2] / 1e3:.0f} kB and "
                            f"{reduces[4] / 1e3:.0f} kB, bounded by twice the {grad_bytes / 1e3:.0f} kB of "
                            "gradients.)")


# --- Exercise 4: shards that keep every bit ---------------------------------------------------------------------

# (n, W): several blocks per rank, a remainder, and fewer blocks than ranks (some shards empty)
SHARD_CASES = ((5 * SEARCH_BLOCK + 377, 2), (8 * SEARCH_BLOCK + 5, 3), (3 * SEARCH_BLOCK + 900, 4),
               (SEARCH_BLOCK + 17, 4))


def _bounds(fn: Any, n: int, world_size: int) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in fn(n, world_size, SEARCH_BLOCK)]


def _cover(fn: Any) -> bool:
    for n, w in SHARD_CASES:
        b = _bounds(fn, n, w)
        if len(b) != w or b[0][0] != 0 or b[-1][1] != n or any(p[1] != q[0] for p, q in pairwise(b)) \
                or any(stop < start for start, stop in b):
            return False
    return True


def _balanced(fn: Any) -> bool:
    return all(max(s) - min(s) <= SEARCH_BLOCK for s in ([b - a for a, b in _bounds(fn, n, w)] for n, w in SHARD_CASES))


def _aligned(fn: Any) -> bool:
    return all(a % SEARCH_BLOCK == 0 for n, w in SHARD_CASES for a, _ in _bounds(fn, n, w))


def _bit_for_bit(fn: Any) -> bool:
    r"""A sharded search of duplicated vectors (about 8 copies of each, near-ties everywhere) over the learner's
    shards, merged, equals :func:`~mmtutor.similarity.topk_search` exactly, indices and scores."""
    for n, w in SHARD_CASES:
        g = torch.Generator().manual_seed(n)
        base = torch.randn(n // 8 + 1, 32, generator=g)
        database, queries = base[torch.randint(0, len(base), (n,), generator=g)], torch.randn(64, 32, generator=g)
        lists = [local_topk(queries, database[a:b], 10, offset=a) for a, b in _bounds(fn, n, w)]
        got, want = merge_topk([s for s, _ in lists], [i for _, i in lists], 10), topk_search(queries, database, 10)
        if not (torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])):
            return False
    return True


@exercise(4, tests="cutting a database into shards at multiples of the search block, evenly, so that the sharded "
                   "search keeps every bit of the single-process one; then moving a cut to see what breaks",
          wrong_answers={"shards that miss or repeat rows": "not true of your answer: the shards are contiguous, one "
                                                            "per rank, and cover rows 0 .. n-1",
                         "an uneven split": "not true of your answer: the shard sizes differ by at most one block",
                         "a cut off the block": "not true of your answer: every cut falls on a multiple of block"})
def check_shard_bounds(my_shard_bounds: Any) -> None:
    r"""Exercise 4: ``my_shard_bounds(n, world_size, block)`` returns ``[(start, stop), ...]``, one contiguous shard
    per rank covering rows ``0 .. n-1``, cuts at multiples of ``block``, sizes within one block of each other
    (some empty when there are fewer blocks than ranks). Checked on four hidden ``(n, W)`` cases: the shape of the
    shards, then a sharded search of duplicated vectors over them against ``topk_search`` bit for bit, then the
    cuts' alignment (a cut moved by one row fails there if the search itself did not already differ)."""
    __tracebackhide__ = True
    check_properties("Exercise 4", my_shard_bounds,
                     [("the shards are contiguous, one per rank, and cover rows 0 .. n-1", _cover),
                      ("the shard sizes differ by at most one block", _balanced),
                      ("a sharded search over your shards equals topk_search bit for bit", _bit_for_bit),
                      ("every cut falls on a multiple of block", _aligned)],
                     hints=("count the blocks first: ceil(n / block) of them, the last one possibly short",
                            "share the blocks, not the rows, out among the ranks as evenly as possible",
                            "turn each rank's first block number into a row (times block), and never cut past n"))
