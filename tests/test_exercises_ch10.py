"""Chapter 10's exercise checks: right answers pass, typical wrong ones get their message, stubs say TODO.

covers: mmtutor.exercises.ch10
"""

from __future__ import annotations

import pytest

from mmtutor.distributed import SEARCH_BLOCK, merge_topk, shard_bounds
from mmtutor.exercises import ExerciseFailed, ch10

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_check_merge_topk(capsys):
    ch10.check_merge_topk(merge_topk)
    assert "PASS Exercise 1" in capsys.readouterr().out
    for wrong, message in ((ch10._one_stable_sort, "whatever order the lists arrive in"),
                           (ch10._larger_index, "larger index"), (ch10._ascending, "descending")):
        with pytest.raises(ExerciseFailed, match=message):
            ch10.check_merge_topk(wrong)


def test_check_negatives(capsys):
    ch10.check_negatives(lambda n, w, gathered: n - 1 if gathered else n // w - 1)
    assert "PASS Exercise 2" in capsys.readouterr().out
    for wrong, message in ((lambda n, w, g: n if g else n // w, "positive"),
                           (lambda n, w, g: n // w - 1 if g else n - 1, "swapped"),
                           (lambda n, w, g: n - 1, "own N / W")):
        with pytest.raises(ExerciseFailed, match=message):
            ch10.check_negatives(wrong)


def test_check_gather_traffic(capsys):
    ch10.check_gather_traffic(lambda b, d, w: 2 * (w - 1) * b * d * 4)
    assert "kB" in capsys.readouterr().out
    for wrong, message in ((lambda b, d, w: 2 * w * b * d * 4, "own block"),
                           (lambda b, d, w: (w - 1) * b * d * 4, "two blocks"),
                           (lambda b, d, w: 2 * (w - 1) * b * d, "4 bytes"),
                           (lambda b, d, w: 2 * (w - 1) * b * d * 8, "not 8")):
        with pytest.raises(ExerciseFailed, match=message):
            ch10.check_gather_traffic(wrong)


def test_check_shard_bounds(capsys):
    ch10.check_shard_bounds(shard_bounds)
    assert "PASS Exercise 4" in capsys.readouterr().out

    def moved(n, w, block):  # one cut moved by a single row
        (a0, b0), (a1, b1), *rest = shard_bounds(n, w, block)
        return [(a0, b0 + 1), (a1 + 1, b1), *rest]

    with pytest.raises(ExerciseFailed, match="bit for bit|multiple of block"):
        ch10.check_shard_bounds(moved)
    with pytest.raises(ExerciseFailed, match="cover rows"):
        ch10.check_shard_bounds(lambda n, w, block: shard_bounds(n, w, block)[:-1])
    with pytest.raises(ExerciseFailed, match="at most one block"):
        ch10.check_shard_bounds(lambda n, w, block: [(0, 0)] * (w - 1) + [(0, n)])
    assert all(any(b - a == 0 for a, b in shard_bounds(n, w)) for n, w in ch10.SHARD_CASES if -(-n // SEARCH_BLOCK) < w)


def test_stubs_say_todo(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise")

    for check in (ch10.check_merge_topk, ch10.check_negatives, ch10.check_gather_traffic, ch10.check_shard_bounds):
        check(stub)
        check(...)
    out = capsys.readouterr().out
    assert out.count("TODO Exercise") == 8 and "PASS" not in out
