"""Chapter 4's exercise checks: right answers pass, typical wrong ones get their message, stubs say TODO.

covers: mmtutor.exercises.ch04
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from mmtutor.exercises import ExerciseFailed, ch04
from mmtutor.ngram import bits_per_byte, ngram_nll

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _merge_step(ids, new_id):
    counts = Counter(zip(ids, ids[1:], strict=False))
    best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
    out, t = [], 0
    while t < len(ids):
        if t + 1 < len(ids) and (ids[t], ids[t + 1]) == best:
            out, t = [*out, new_id], t + 2
        else:
            out, t = [*out, ids[t]], t + 1
    return best, out


def test_check_merge_step(capsys):
    ch04.check_merge_step(_merge_step)
    assert "PASS Exercise 1" in capsys.readouterr().out
    for wrong, message in ((ch04._tie_first_seen, "on a tie"), (ch04._tie_largest, "on a tie"),
                           (ch04._first_only, "only the first occurrence"), (ch04._no_overlap, "do not overlap")):
        with pytest.raises(ExerciseFailed, match=message):
            ch04.check_merge_step(wrong)


def _min_p(logits, min_p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.max(-1, keepdim=True).values, -math.inf)


def _kept(logits, previous, min_p=0.1):
    n = (~_min_p(logits, min_p).isinf()).sum(-1).double()
    return n[previous == ord(" ")].mean().item(), n[(previous >= ord("a")) & (previous <= ord("z"))].mean().item()


def test_check_min_p_and_measurement(capsys):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 256, generator=g) * torch.rand(400, 1, generator=g) * 6
    previous = torch.randint(0, 128, (400,), generator=g)
    previous[:80] = ord(" ")
    space, letter = _kept(logits, previous)
    ch04.check_min_p(_min_p, space, letter, logits, previous)
    out = capsys.readouterr().out
    assert "PASS Exercise 2:" in out and "PASS Exercise 2 (measurement)" in out and "top-p 0.9" in out
    wrong_filters = ((lambda z, m: z.masked_fill(z < m * z.max(-1, keepdim=True).values, -math.inf), "logits"),
                     (lambda z, m: z.masked_fill(z.softmax(-1) < m, -math.inf), "LARGEST"),
                     (ch04._batch_max, "whole batch"),
                     (lambda z, m: _min_p(z, m).softmax(-1), "not probabilities"))
    for wrong, message in wrong_filters:
        with pytest.raises(ExerciseFailed, match=message):
            ch04.check_min_p(wrong, space, letter, logits, previous)
    with pytest.raises(ExerciseFailed, match="swapped"):
        ch04.check_min_p(_min_p, letter, space, logits, previous)
    with pytest.raises(ExerciseFailed, match="min_p = 0.1") as failure:
        ch04.check_min_p(_min_p, *_kept(logits, previous, 0.2), logits, previous)
    assert f"{space:.3f}" not in str(failure.value)


def _trigram_nll(train_ids, ids, V, k):
    tr, x = train_ids.tolist(), ids.tolist()
    c_abw, c_ab = Counter(zip(tr, tr[1:], tr[2:], strict=False)), Counter(zip(tr[:-2], tr[1:-1], strict=True))
    return -sum(math.log((c_abw[(a, b, w)] + k) / (c_ab[(a, b)] + k * V))
                for a, b, w in zip(x, x[1:], x[2:], strict=False))


def test_check_trigram_tuning_and_comparison(capsys):
    data = ch04._lee_bytes()
    grid = ch04.K_GRID
    train_ids, valid_ids, test_ids = data
    k = min(grid, key=lambda k: ngram_nll(train_ids, valid_ids, 256, 3, k))  # the learner's function is checked
    bpb = bits_per_byte(ngram_nll(train_ids, test_ids, 256, 3, k), len(test_ids) - 2)  # on small inputs below
    assert bpb == ch04._tuned_bpb()[0] and 2 < bpb < 4
    ch04.check_trigram(_trigram_nll, k, bpb, bpb < 3.0, data, grid, 3.0)
    assert capsys.readouterr().out.count("PASS Exercise 3") == 4
    with pytest.raises(ExerciseFailed, match="leave out the last pair"):
        ch04.check_trigram(lambda *a: ch04._all_pairs_context(*a).item(), k, bpb, True, data, grid, 3.0)
    with pytest.raises(ExerciseFailed, match="one of the values of K_GRID"):
        ch04.check_trigram(_trigram_nll, 0.05, bpb, True, data, grid, 3.0)
    with pytest.raises(ExerciseFailed, match="nats"):
        ch04.check_trigram(_trigram_nll, k, bpb * math.log(2), True, data, grid, 3.0)
    with pytest.raises(ExerciseFailed, match="against the GPT"):
        ch04.check_trigram(_trigram_nll, k, bpb, bpb > 3.0, data, grid, 3.0)


def test_check_kv_cache_size(capsys):
    right = 2 * 3 * 4 * 20 * 96
    assert ch04.check_kv_cache_size.__exercise__.expected_values() == [right]
    ch04.check_kv_cache_size(right)
    ch04.check_kv_cache_size(float(right))
    assert capsys.readouterr().out.count("PASS Exercise 4") == 2
    for wrong, message in ((right // 2, "keys only"), (right // 3, "one layer"), (right // 4, "one sequence"),
                           (right * 3, "heads"), (right * 4, "bytes"), (right + 1, "the number of numbers")):
        with pytest.raises(ExerciseFailed, match=message) as failure:
            ch04.check_kv_cache_size(wrong)
        assert str(right) not in str(failure.value)


def test_stubs_say_todo(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise")

    ch04.check_merge_step(stub)
    ch04.check_min_p(stub, ..., ..., torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))
    ch04.check_trigram(stub, ..., ..., ..., ch04._lee_bytes(), ch04.K_GRID, 3.0)
    ch04.check_kv_cache_size(...)
    out = capsys.readouterr().out
    assert out.count("TODO Exercise") == 1 + 2 + 4 + 1 and "PASS" not in out
