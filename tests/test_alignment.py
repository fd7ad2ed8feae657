"""Chapter 7's losses: CLIP's and NegCLIP's against direct computations, with one or several true pairs per row.

covers: mmtutor.alignment.loss
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmtutor.alignment import clip_loss, clip_loss_with_negatives


def direct_clip_loss(u: torch.Tensor, t: torch.Tensor, s: float) -> torch.Tensor:
    """CLIP's loss written out with loops: -log p(text i | image i) and -log p(image i | text i)."""
    n = u.shape[0]
    u = u / u.norm(dim=1, keepdim=True)
    t = t / t.norm(dim=1, keepdim=True)
    total = u.new_zeros(())
    for i in range(n):
        row = torch.stack([s * (u[i] * t[j]).sum() for j in range(n)])
        col = torch.stack([s * (u[j] * t[i]).sum() for j in range(n)])
        total = total - (row[i] - torch.logsumexp(row, 0)) - (col[i] - torch.logsumexp(col, 0))
    return total / (2 * n)


def random_pairs(n: int = 6, d: int = 5, seed: int = 0, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


# ------------------------------------------------------------------------------------------- clip_loss


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_loss_matches_direct_computation_values_and_gradients(seed: int) -> None:
    u, t = random_pairs(seed=seed)
    u1, t1 = u.clone().requires_grad_(), t.clone().requires_grad_()
    u2, t2 = u.clone().requires_grad_(), t.clone().requires_grad_()
    ours, ref = clip_loss(u1, t1, 7.5), direct_clip_loss(u2, t2, 7.5)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(u1.grad, u2.grad)
    torch.testing.assert_close(t1.grad, t2.grad)


def test_clip_loss_gradcheck_including_the_scale() -> None:
    u, t = random_pairs(n=4, d=3)
    s = torch.tensor(3.0, dtype=torch.float64)
    inputs = tuple(x.clone().requires_grad_() for x in (u, t, s))
    assert torch.autograd.gradcheck(clip_loss, inputs)


def test_clip_loss_is_exactly_log_n_when_all_logits_are_equal() -> None:
    for n in (1, 2, 7, 64):
        same = torch.ones(n, 4)
        assert clip_loss(same, same, 14.3).item() == pytest.approx(math.log(n), abs=1e-6)


def test_clip_loss_is_near_log_n_for_random_pairs_at_low_scale() -> None:
    u, t = random_pairs(n=256, d=64, dtype=torch.float32)
    assert abs(clip_loss(u, t, 1.0).item() - math.log(256)) < 0.05


def test_clip_loss_is_near_zero_for_aligned_well_separated_pairs() -> None:
    e = torch.eye(8)
    assert clip_loss(e, 3 * e, 100.0).item() < 1e-30 + 1e-6
    assert clip_loss(e, e.roll(1, dims=0), 100.0).item() > 50  # every pair mismatched: large


def test_clip_loss_is_symmetric_and_ignores_lengths() -> None:
    u, t = random_pairs()
    torch.testing.assert_close(clip_loss(u, t, 5.0), clip_loss(t, u, 5.0))
    torch.testing.assert_close(clip_loss(u, t, 5.0), clip_loss(3 * u, 0.5 * t, 5.0))
    torch.testing.assert_close(clip_loss(u, t, torch.tensor(5.0, dtype=torch.float64)), clip_loss(u, t, 5.0))


def test_clip_loss_rejects_bad_inputs() -> None:
    u, t = random_pairs()
    with pytest.raises(ValueError, match="same number N"):
        clip_loss(u, t[:4], 1.0)
    with pytest.raises(ValueError, match="same dimension"):
        clip_loss(u, t[:, :3], 1.0)
    with pytest.raises(ValueError, match="> 0"):
        clip_loss(u, t, 0.0)
    with pytest.raises(ValueError, match="> 0"):
        clip_loss(u, t, float("nan"))
    with pytest.raises(TypeError):
        clip_loss(u.long(), t, 1.0)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        clip_loss(u[0], t[0], 1.0)
    with pytest.raises(ValueError, match="scalar"):
        clip_loss(u, t, torch.ones(2))


def test_clip_loss_with_negatives_matches_direct_computation() -> None:
    u, t = random_pairs(n=5, d=4)
    neg, _ = random_pairs(n=5, d=4, seed=9)
    s = 4.0
    un, tn, nn_ = (F.normalize(x, dim=1) for x in (u, t, neg))
    logits = s * un @ torch.cat([tn, nn_]).T  # (5, 10)
    i2t = -(logits.diagonal() - torch.logsumexp(logits, 1)).mean()
    t2i_logits = logits[:, :5].T
    t2i = -(t2i_logits.diagonal() - torch.logsumexp(t2i_logits, 1)).mean()
    torch.testing.assert_close(clip_loss_with_negatives(u, t, neg, s), (i2t + t2i) / 2)
    inputs = tuple(x.clone().requires_grad_() for x in (u, t, neg))
    assert torch.autograd.gradcheck(lambda a, b, c: clip_loss_with_negatives(a, b, c, s), inputs)


def test_far_negatives_change_nothing_and_a_copy_of_the_caption_costs_log_2() -> None:
    u, t = random_pairs(n=5, d=4)
    away = torch.tensor([10.0, 0, 0, 0], dtype=torch.float64)
    u, t = u + away, t + away  # every image and text points roughly along +x; the negatives along -x
    negatives = -away.expand(5, 4)
    torch.testing.assert_close(clip_loss_with_negatives(u, t, negatives, 50.0), clip_loss(u, t, 50.0),
                               rtol=0, atol=1e-9)
    e = torch.eye(4, dtype=torch.float64)  # perfectly aligned; a negative equal to the caption halves p
    assert clip_loss_with_negatives(e, e, e, 100.0).item() == pytest.approx(math.log(2) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="one negative text per image"):
        clip_loss_with_negatives(u, t, t[:3], 1.0)


# ------------------------------------------------------------------------------- several true pairs per row


def direct_masked_loss(u: torch.Tensor, t: torch.Tensor, s: float, p: torch.Tensor) -> torch.Tensor:
    """The loss with the other true pairs left out, with loops: -log p(text i | image i) among text i and the
    texts false for image i, and -log p(image j | text j) among image j and the images text j is false of."""
    u, t = F.normalize(u, dim=1), F.normalize(t, dim=1)
    n = u.shape[0]
    total = u.new_zeros(())
    for i in range(n):
        row = torch.stack([s * (u[i] * t[j]).sum() for j in range(n) if j == i or not p[i, j]])
        col = torch.stack([s * (u[j] * t[i]).sum() for j in range(n) if j == i or not p[j, i]])
        own_row = sum(1 for j in range(i) if not p[i, j])  # position of the pair itself among the kept entries
        own_col = sum(1 for j in range(i) if not p[j, i])
        total = total - (row[own_row] - torch.logsumexp(row, 0)) - (col[own_col] - torch.logsumexp(col, 0))
    return total / (2 * n)


def class_positives(labels: list[int]) -> torch.Tensor:
    y = torch.tensor(labels)
    return y[:, None] == y[None, :]  # (N, N): same class = a true pair


@pytest.mark.parametrize("seed", [0, 1])
def test_several_positives_match_the_direct_computation_values_and_gradients(seed: int) -> None:
    u, t = random_pairs(n=7, d=4, seed=seed)
    p = class_positives([0, 1, 0, 2, 1, 0, 3])
    p[3, 6] = True  # not symmetric: text 6 is also true of image 3, text 3 is not of image 6
    u1, t1 = u.clone().requires_grad_(), t.clone().requires_grad_()
    u2, t2 = u.clone().requires_grad_(), t.clone().requires_grad_()
    ours, ref = clip_loss(u1, t1, 3.0, positives=p), direct_masked_loss(u2, t2, 3.0, p)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(u1.grad, u2.grad)
    torch.testing.assert_close(t1.grad, t2.grad)
    inputs = tuple(x.clone().requires_grad_() for x in (u, t))
    assert torch.autograd.gradcheck(lambda a, b: clip_loss(a, b, 3.0, positives=p), inputs)


def test_the_diagonal_as_positives_is_clip_loss() -> None:
    u, t = random_pairs(n=9, d=6)
    eye = torch.eye(9, dtype=torch.bool)
    torch.testing.assert_close(clip_loss(u, t, 5.0, positives=eye), clip_loss(u, t, 5.0))
    neg, _ = random_pairs(n=9, d=6, seed=4)
    torch.testing.assert_close(clip_loss_with_negatives(u, t, neg, 5.0, positives=eye),
                               clip_loss_with_negatives(u, t, neg, 5.0))


def test_with_the_other_true_pairs_left_out_the_loss_can_reach_zero() -> None:
    labels = [0, 0, 1, 1, 2, 2]  # two images of each of three classes, each caption its class vector
    e = torch.eye(3, dtype=torch.float64)[labels]
    assert clip_loss(e, e, 100.0).item() == pytest.approx(math.log(2), abs=1e-9)  # the twin counts as wrong
    assert clip_loss(e, e, 100.0, positives=class_positives(labels)).item() < 1e-9  # the twin is left out


@pytest.mark.parametrize("seed", range(5))
def test_diagonal_targets_push_true_pairs_apart_more_than_when_they_are_left_out(seed: int) -> None:
    labels = [0, 0, 1, 1, 2, 2, 0, 1]
    p = class_positives(labels)
    other_true = p & ~torch.eye(len(labels), dtype=torch.bool)  # true pairs off the diagonal
    u, t = random_pairs(n=len(labels), d=5, seed=seed)

    def change_of_their_cosine(**kw) -> float:  # after one small gradient step
        uu, tt = u.clone().requires_grad_(), t.clone().requires_grad_()
        clip_loss(uu, tt, 5.0, **kw).backward()
        before = F.normalize(u, dim=1) @ F.normalize(t, dim=1).T
        after = F.normalize(u - 1e-3 * uu.grad, dim=1) @ F.normalize(t - 1e-3 * tt.grad, dim=1).T
        return (after - before)[other_true].mean().item()

    # Left out, a true pair gets no gradient of its own, only what it shares with the pairs it belongs to.
    assert change_of_their_cosine() < change_of_their_cosine(positives=p)


def test_a_negative_true_of_another_image_can_be_left_out() -> None:
    u, t = random_pairs(n=4, d=3)
    neg, _ = random_pairs(n=4, d=3, seed=5)
    wide = torch.cat([torch.eye(4, dtype=torch.bool), torch.zeros(4, 4, dtype=torch.bool)], dim=1)
    wide[1, 4 + 2] = True  # the hard negative of caption 2 happens to be true of image 1
    logits = 2.0 * F.normalize(u, dim=1) @ F.normalize(torch.cat([t, neg]), dim=1).T  # (4, 8)
    kept = torch.ones(4, 8, dtype=torch.bool)
    kept[1, 6] = False
    i2t = -torch.stack([logits[i, i] - torch.logsumexp(logits[i][kept[i]], 0) for i in range(4)]).mean()
    t2i = -(logits[:, :4].T.log_softmax(dim=1).diagonal()).mean()
    torch.testing.assert_close(clip_loss_with_negatives(u, t, neg, 2.0, positives=wide), (i2t + t2i) / 2)


def test_positives_are_checked() -> None:
    u, t = random_pairs(n=4, d=3)
    eye = torch.eye(4, dtype=torch.bool)
    with pytest.raises(TypeError, match="torch.bool"):
        clip_loss(u, t, 1.0, positives=eye.float())
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        clip_loss(u, t, 1.0, positives=eye[:3])
    no_row = eye.clone()
    no_row[2, 2] = False
    with pytest.raises(ValueError, match="every row"):
        clip_loss(u, t, 1.0, positives=no_row)
    off_diagonal = torch.ones(4, 4, dtype=torch.bool)
    off_diagonal[1, 1] = False
    with pytest.raises(ValueError, match="diagonal"):
        clip_loss(u, t, 1.0, positives=off_diagonal)
