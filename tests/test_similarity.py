"""Chapter 4: cosine similarity, exact top-k search and the approximate indexes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mmtutor
from mmtutor.similarity import (
    IVFIndex,
    LSHIndex,
    PQIndex,
    _topk_torch,
    clustered_vectors,
    cosine_similarity,
    kmeans,
    normalize,
    recall_at_k,
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
        _, torch_indices = _topk_torch(q, x, k, 1e-8, block=999)  # the GPU path, run on the CPU
        torch.testing.assert_close(torch_indices, ref_indices, rtol=0, atol=0)


@pytest.mark.parametrize("n", [1000, 140_000])
def test_topk_search_ties_duplicates_and_zero_vectors(n):
    g = torch.Generator().manual_seed(3)
    base = torch.randn(20, 8, generator=g)
    x = base[torch.randint(0, 20, (n,), generator=g)]  # every row has many exact duplicates
    x[torch.randint(0, n, (n // 30,), generator=g)] = 0  # zero rows score exactly 0
    q = torch.cat([base[:5], torch.zeros(2, 8), torch.randn(3, 8, generator=g)])  # a zero query ties everywhere
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


def test_recall_at_k():
    truth = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(truth, truth) == 1.0
    assert recall_at_k(torch.tensor([[3, 9, 1], [7, 8, 9]]), truth) == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- approximate indexes
@pytest.fixture(scope="module")
def clustered():
    x = clustered_vectors(20_000 + 200, 32, n_clusters=200, spread=0.6, seed=0)
    database, queries = x[:20_000], x[20_000:]
    return database, queries, topk_search(queries, database, 10)[1]


def test_kmeans_finds_separated_blobs():
    g = torch.Generator().manual_seed(6)
    centers = 10 * torch.eye(4, 8)
    x = centers[torch.arange(400) % 4] + 0.1 * torch.randn(400, 8, generator=g)
    c = kmeans(x, 4, n_iter=10, spherical=False)
    # each true centre has a learned centroid within 0.1
    assert torch.cdist(centers, c).min(1).values.max() < 0.1
    cs = kmeans(x, 4, n_iter=10)  # spherical: unit centroids
    torch.testing.assert_close(cs.norm(dim=1), torch.ones(4))


def test_ivf_recall_and_sanity(clustered):
    database, queries, truth = clustered
    ivf = IVFIndex(32, 64).train(database)
    ivf.add(database[:12_000]).add(database[12_000:])  # two adds: ids continue
    assert ivf.ntotal == 20_000 and ivf.list_sizes().sum() == 20_000
    _, self_ids = ivf.search(database[:500], 1, n_probe=1)  # each vector finds itself in its own cell
    assert (self_ids[:, 0] == torch.arange(500)).all()
    recalls = [recall_at_k(ivf.search(queries, 10, n_probe=p)[1], truth) for p in (1, 4, 16, 64)]
    assert recalls == sorted(recalls) and recalls[2] >= 0.9 and recalls[3] == 1.0
    values, indices = ivf.search(queries, 10, n_probe=64)  # all cells: exact search
    assert (values[:, :-1] >= values[:, 1:]).all()
    torch.testing.assert_close(values, topk_search(queries, database, 10)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_probe", [1, 3, 20])
@pytest.mark.parametrize("k", [1, 10, 400])
def test_ivf_equals_exact_search_over_the_probed_cells(n_probe, k):
    # reference: each query's n_probe most similar centroids (ties to the smaller cell), then an exact
    # stable-sorted search over the vectors filed in those cells; k=400 exceeds most cells (padding)
    x = clustered_vectors(6000 + 40, 16, n_clusters=30, spread=0.6, seed=3)
    database, queries = x[:6000], x[6000:].double()  # float64 queries are accepted too
    ivf = IVFIndex(16, 20).train(database).add(database)
    centroids = ivf.centroids.double()
    cell = (normalize(database.double()) @ centroids.T).argmax(1)  # (N,) the cell of each vector
    probed = torch.sort(normalize(queries) @ centroids.T, dim=1, descending=True, stable=True)[1][:, :n_probe]
    scores = normalize(queries) @ normalize(database.double()).T  # (Q, N)
    scores[~(cell[None, :, None] == probed[:, None, :]).any(2)] = -torch.inf
    ref_v, ref_i = torch.sort(scores, dim=1, descending=True, stable=True)
    ref_i[torch.isinf(ref_v)] = -1
    values, indices = ivf.search(queries, k, n_probe=n_probe)
    assert values.dtype == torch.float32 and indices.dtype == torch.int64
    assert torch.equal(indices, ref_i[:, :k])
    torch.testing.assert_close(values.double(), ref_v[:, :k], atol=1e-5, rtol=0)


def test_ivf_ties_go_to_the_smaller_id():
    # one-hot vectors, each eight times: q . x is one exact product, so duplicates tie exactly
    database = torch.eye(8)[torch.arange(64) % 8]
    queries = torch.randn(5, 8, generator=torch.Generator().manual_seed(8))
    ivf = IVFIndex(8, 4).train(database).add(database)
    for n_probe, k in ((4, 20), (4, 64), (1, 3)):
        values, indices = ivf.search(queries, k, n_probe=n_probe)
        if n_probe == 4:  # every cell: exact search
            assert torch.equal(indices, brute_force(queries, database, k)[1])
        order = torch.sort(-values, dim=1, stable=True)[1]  # scores descending, equal scores by ascending id
        assert torch.equal(order, torch.arange(k).expand_as(order))
        tied = values[:, 1:] == values[:, :-1]
        assert (indices[:, 1:][tied] > indices[:, :-1][tied]).all()


def test_ivf_pads_missing_results_and_errors():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(100, 8, generator=g)
    ivf = IVFIndex(8, 10)
    with pytest.raises(RuntimeError, match="train"):
        ivf.search(x[:2], 1)
    with pytest.raises(RuntimeError, match="train"):
        ivf.add(x)
    ivf.train(x)
    with pytest.raises(RuntimeError, match="add"):
        ivf.search(x[:2], 1)
    ivf.add(x[:5])
    values, indices = ivf.search(x[:2], 8, n_probe=10)  # only 5 vectors exist
    assert (indices[:, 5:] == -1).all() and torch.isinf(values[:, 5:]).all()
    with pytest.raises(ValueError, match="n_probe"):
        ivf.search(x[:2], 1, n_probe=11)
    with pytest.raises(ValueError, match="dimension 8"):
        ivf.search(torch.randn(2, 9), 1)
    with pytest.raises(ValueError, match="n_lists=10"):
        IVFIndex(8, 10).train(x[:5])


def test_lsh_recall_grows_with_tables(clustered):
    database, queries, truth = clustered
    lsh = LSHIndex(32, n_tables=16, n_bits=8).add(database)
    _, self_ids = lsh.search(database[:500], 1, n_tables=1)  # a vector shares every bucket with itself
    assert (self_ids[:, 0] == torch.arange(500)).all()
    recalls = [recall_at_k(lsh.search(queries, 10, n_tables=t)[1], truth) for t in (1, 2, 4, 8, 16)]
    assert recalls == sorted(recalls)  # candidate sets are nested and re-ranked exactly
    assert recalls[-1] >= 0.9 and recalls[0] < recalls[-1]
    with pytest.raises(RuntimeError, match="add"):
        LSHIndex(32).search(queries, 1)
    with pytest.raises(ValueError, match="n_tables"):
        lsh.search(queries, 1, n_tables=17)


def test_pq_scores_are_table_lookups(clustered):
    database, queries, truth = clustered
    pq = PQIndex(32, m=8).train(database[:5000])
    with pytest.raises(RuntimeError, match="add"):
        pq.search(queries, 1)
    pq.add(database)
    assert pq.codes.shape == (8, 20_000) and pq.bytes_per_vector() < 10
    values, indices = pq.search(queries, 10)
    # asymmetric distance: exactly the dot products with the decoded database, top-k by (score, index)
    scores = torch.from_numpy(normalize(queries).numpy() @ pq.decode(pq.codes).T)
    ref_values, ref_indices = torch.sort(scores, dim=1, descending=True, stable=True)
    torch.testing.assert_close(values, ref_values[:, :10], atol=1e-5, rtol=0)
    assert recall_at_k(indices, ref_indices[:, :10]) > 0.99  # float rounding may swap near-ties
    assert recall_at_k(indices, truth) > 0.3  # 4 bytes for 32 numbers: coarse
    with pytest.raises(RuntimeError, match="train"):
        PQIndex(32, m=8).add(database)
    with pytest.raises(ValueError, match="divisible"):
        PQIndex(32, m=5)
