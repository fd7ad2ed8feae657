"""Chapter 6: cosine similarity, exact top-k search, neighbour recall.

covers: mmtutor.similarity, mmtutor._search (the exact search engine); the indexes: tests/test_ann.py
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mmtutor
from mmtutor._search import topk_torch
from mmtutor.similarity import (
    clustered_vectors,
    cosine_similarity,
    neighbour_recall,
    normalize,
    topk_search,
)


def brute_force(q: torch.Tensor, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: the full cosine matrix in float64, stable-sorted (ties by smaller index)."""
    if q.shape[0] * x.shape[0] * x.shape[1] <= 2**24:
        scores = cosine_similarity(q.double()[:, None, :], x.double()[None, :, :])  # (Q, N)
    else:  # large (and tie-free) inputs: the same in one matrix product
        scores = normalize(q.double()) @ normalize(x.double()).T
    values, order = torch.sort(scores, dim=1, descending=True, stable=True)
    return values[:, :k], order[:, :k]


# ----------------------------------------------------------------------------- cosine similarity
@pytest.mark.parametrize("shape_a, shape_b, dim", [
    ((7,), (7,), -1), ((5, 7), (5, 7), -1), ((5, 7), (7,), -1), ((3, 1, 6), (1, 4, 6), -1),
    ((4, 6, 3), (4, 6, 3), 1), ((6, 3), (2, 6, 3), 1), ((2, 6, 3), (6, 3), -2)])
def test_cosine_matches_torch(shape_a, shape_b, dim):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(shape_a, generator=g), torch.randn(shape_b, generator=g)
    torch.testing.assert_close(cosine_similarity(a, b, dim=dim), F.cosine_similarity(a, b, dim=dim))
    assert mmtutor.cosine_similarity is cosine_similarity


def test_cosine_properties():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(50, 16, generator=g), torch.randn(50, 16, generator=g)
    s = cosine_similarity(a, b)
    assert ((s >= -1) & (s <= 1)).all()
    torch.testing.assert_close(cosine_similarity(a, 3.0 * a), torch.ones(50))  # scale-invariant
    torch.testing.assert_close(cosine_similarity(a, -a), -torch.ones(50))
    torch.testing.assert_close(s, cosine_similarity(b, a))  # symmetric
    # for unit vectors, |a - b|^2 = 2 - 2 sim(a, b)
    an, bn = normalize(a), normalize(b)
    torch.testing.assert_close(((an - bn) ** 2).sum(-1), 2 - 2 * s, atol=1e-5, rtol=1e-5)


def test_cosine_zero_vector_gives_zero_not_nan():
    z, v = torch.zeros(4), torch.randn(4)
    assert cosine_similarity(z, v).item() == 0.0
    assert cosine_similarity(z, z).item() == 0.0
    assert normalize(torch.zeros(2, 3)).eq(0).all()


def test_cosine_gradients_match_torch():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: cosine_similarity(a, b), (a, b))
    ours = torch.autograd.grad(cosine_similarity(a, b).sum(), (a, b))
    ref = torch.autograd.grad(F.cosine_similarity(a, b, dim=-1).sum(), (a, b))
    for o, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(o, r)


def test_cosine_errors():
    with pytest.raises(ValueError, match="size 3 .* size 4"):
        cosine_similarity(torch.randn(3), torch.randn(4))
    with pytest.raises(ValueError, match="size 1 .* size 4"):  # no broadcasting along dim
        cosine_similarity(torch.randn(2, 1), torch.randn(2, 4))
    with pytest.raises(ValueError, match="broadcast"):
        cosine_similarity(torch.randn(2, 4), torch.randn(3, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        cosine_similarity([1.0, 2.0], torch.randn(2))
    with pytest.raises(ValueError, match="dim"):
        cosine_similarity(torch.randn(2, 4), torch.randn(2, 4), dim=2)
    with pytest.raises(ValueError, match="scalar"):
        cosine_similarity(torch.tensor(1.0), torch.tensor(2.0))


# ----------------------------------------------------------------------------- exact search
@pytest.mark.parametrize("n_q, n, d, k", [(5, 10, 4, 10), (7, 3000, 16, 5), (600, 700, 8, 3),
                                          (40, 150_000, 8, 10), (3, 1, 3, 1)])
def test_topk_search_equals_brute_force(n_q, n, d, k):
    g = torch.Generator().manual_seed(n)
    q, x = torch.randn(n_q, d, generator=g), torch.randn(n, d, generator=g)
    values, indices = topk_search(q, x, k)
    ref_values, ref_indices = brute_force(q, x, k)
    assert values.shape == (n_q, k) and indices.dtype == torch.int64 and values.dtype == torch.float32
    torch.testing.assert_close(indices, ref_indices, rtol=0, atol=0)
    torch.testing.assert_close(values.double(), ref_values, atol=1e-5, rtol=0)
    assert (values[:, :-1] >= values[:, 1:]).all()
    if n <= 5000:
        _, torch_indices = topk_torch(q, x, k, 1e-8, block=999)  # the GPU path, run on the CPU
        torch.testing.assert_close(torch_indices, ref_indices, rtol=0, atol=0)


@pytest.mark.parametrize("n", [1000, 140_000])
def test_topk_search_ties_duplicates_and_zero_vectors(n):
    # BLAS may round one dot product differently at different rows of a tile (OpenBLAS's AVX2 kernels do), so
    # equal vectors score exactly equal only where the arithmetic is exact: unit vectors with entries 0 and
    # +-1/2 (four of eight nonzero), whose dot products are multiples of 1/4 in any order of summation
    g = torch.Generator().manual_seed(3)
    signs = torch.randint(0, 2, (23, 8), generator=g) * 2.0 - 1  # (23, 8) entries +-1
    support = torch.rand(23, 8, generator=g).argsort(1) < 4  # four nonzero entries per row
    base = signs * support  # (23, 8): norm 2, so normalising halves it exactly
    x = base[torch.randint(0, 20, (n,), generator=g)]  # every row has many exact duplicates
    x[torch.randint(0, n, (n // 30,), generator=g)] = 0  # zero rows score exactly 0
    q = torch.cat([base[:5], torch.zeros(2, 8), base[20:]])  # a zero query ties everywhere; 3 more vectors
    k = 60
    values, indices = topk_search(q, x, k)
    ref_values, ref_indices = brute_force(q, x, k)
    torch.testing.assert_close(indices, ref_indices, rtol=0, atol=0)
    assert (indices[5] == torch.arange(k)).all() and (values[5] == 0).all()  # all ties: smallest indices
    for r in range(len(q)):  # equal scores come in increasing index order
        same = values[r, 1:] == values[r, :-1]
        assert (indices[r, 1:][same] > indices[r, :-1][same]).all()


def test_topk_search_k_equals_n_is_a_stable_sort():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(300, 6, generator=g).round()  # rounded: many ties
    q = torch.randn(4, 6, generator=g).round()
    values, indices = topk_search(q, x, 300)
    ref_values, _ = brute_force(q, x, 300)
    torch.testing.assert_close(values.double(), ref_values, atol=1e-6, rtol=0)
    assert (indices.sort(1).values == torch.arange(300)).all()  # a permutation of every row
    same = values[:, 1:] == values[:, :-1]  # float32 ties (not float64's) come in index order
    assert same.sum() > 100 and (indices[:, 1:][same] > indices[:, :-1][same]).all()
    torch.testing.assert_close(values, cosine_similarity(q[:, None], x[indices]), atol=1e-6, rtol=0)


def test_topk_search_float64_and_self_search():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2000, 12, dtype=torch.float64, generator=g)
    values, indices = topk_search(x, x, 1)  # every database vector finds itself first
    assert values.dtype == torch.float64
    assert (indices[:, 0] == torch.arange(2000)).all()
    torch.testing.assert_close(values[:, 0], torch.ones(2000, dtype=torch.float64))


def test_topk_search_errors():
    q, x = torch.randn(3, 4), torch.randn(10, 4)
    with pytest.raises(ValueError, match="k must lie in"):
        topk_search(q, x, 11)
    with pytest.raises(ValueError, match="k must lie in"):
        topk_search(q, x, 0)
    with pytest.raises(ValueError, match="D=5"):
        topk_search(torch.randn(3, 5), x, 2)
    with pytest.raises(ValueError, match="empty"):
        topk_search(torch.randn(0, 4), x, 2)
    with pytest.raises(ValueError, match="empty"):
        topk_search(q, torch.randn(0, 4), 1)
    with pytest.raises(ValueError, match="shape"):
        topk_search(torch.randn(4), x, 1)
    with pytest.raises(TypeError, match="floating"):
        topk_search(q, torch.ones(10, 4, dtype=torch.long), 1)
    with pytest.raises(TypeError, match="int"):
        topk_search(q, x, 2.0)
    bad = x.clone()
    bad[7, 1] = float("nan")
    with pytest.raises(ValueError, match="row 7"):
        topk_search(q, bad, 2)


def test_clustered_vectors_are_seeded_clumps():
    a = clustered_vectors(300, 4, n_clusters=7, spread=0.5, seed=1)
    assert a.shape == (300, 4) and a.dtype == torch.float32
    assert torch.equal(a, clustered_vectors(300, 4, n_clusters=7, spread=0.5, seed=1))  # seeded
    assert not torch.equal(a, clustered_vectors(300, 4, n_clusters=7, spread=0.5, seed=2))
    centres = clustered_vectors(300, 4, n_clusters=7, spread=0.0, seed=1)  # no spread: only the centres
    assert len(torch.unique(centres, dim=0)) == 7
    with pytest.raises(ValueError, match="n_clusters"):
        clustered_vectors(10, 4, n_clusters=0)
    with pytest.raises(ValueError, match="spread"):
        clustered_vectors(10, 4, spread=-1.0)


def test_the_indexes_are_importable_from_similarity():
    import mmtutor.ann
    import mmtutor.similarity

    for name in ("IVFIndex", "LSHIndex", "PQIndex", "kmeans"):  # DESIGN.md: mmtutor.similarity.IVFIndex(dim, n_lists)
        assert getattr(mmtutor.similarity, name) is getattr(mmtutor.ann, name)


def test_neighbour_recall():
    truth = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert neighbour_recall(truth, truth) == 1.0
    assert neighbour_recall(torch.tensor([[3, 9, 1], [7, 8, 9]]), truth) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="neighbour_recall"):
        neighbour_recall(truth[0], truth)
