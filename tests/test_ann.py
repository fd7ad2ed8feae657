"""Chapter 6: the approximate indexes (k-means, IVF, LSH, PQ), each fast search against its reference search.

covers: mmtutor.ann (cluster, ivf, lsh, pq, _index) and the parts of mmtutor._search they use
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmtutor.ann import IVFIndex, LSHIndex, PQIndex, kmeans
from mmtutor.similarity import clustered_vectors, cosine_similarity, neighbour_recall, normalize, topk_search


def assert_same_search(fast: tuple[torch.Tensor, torch.Tensor], ref: tuple[torch.Tensor, torch.Tensor],
                       atol: float = 1e-6) -> None:
    """The fast result against the reference's ``k + 1`` best: the same score at every rank (up to float32
    rounding: BLAS and torch sum the products in different orders), the same id at every rank whose score is
    further than that rounding from its neighbours' (near-ties may come in either order), the same padding."""
    (v, i), (rv, ri) = fast, ref
    k = v.shape[1]
    torch.testing.assert_close(v, rv[:, :k], atol=atol, rtol=0)
    assert torch.equal(i == -1, ri[:, :k] == -1)
    inf = torch.full((len(rv), 1), torch.inf)
    gap = torch.cat([inf, rv[:, :-1] - rv[:, 1:]], 1).nan_to_num(torch.inf)  # (Q, k + 1): above each rank
    apart = (gap[:, :k] > atol) & (gap[:, 1:] > atol)  # (Q, k) no near-tie above or below
    assert torch.equal(i[apart], ri[:, :k][apart]) and apart.float().mean() > 0.9


def brute_force(q: torch.Tensor, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The full cosine matrix in float64, stable-sorted (ties by smaller index)."""
    scores = cosine_similarity(q.double()[:, None, :], x.double()[None, :, :])  # (Q, N)
    values, order = torch.sort(scores, dim=1, descending=True, stable=True)
    return values[:, :k], order[:, :k]


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


def test_kmeans_means_equal_a_plain_loop_and_keep_torchs_threads():
    # the centroid update sums each cluster's points on one torch thread; the thread count is restored after
    g = torch.Generator().manual_seed(7)
    x = torch.randn(300, 5, generator=g)
    threads = torch.get_num_threads()
    c = kmeans(x, 6, n_iter=1, spherical=False, seed=3)
    assert torch.get_num_threads() == threads
    start = x[np.random.default_rng(3).choice(300, 6, replace=False)]  # the start kmeans draws with this seed
    z = torch.cdist(x, start).argmin(1)
    torch.testing.assert_close(c, torch.stack([x[z == j].mean(0) for j in range(6)]))


def test_ivf_recall_and_sanity(clustered):
    database, queries, truth = clustered
    ivf = IVFIndex(32, 64).train(database)
    ivf.add(database[:12_000]).add(database[12_000:])  # two adds: ids continue
    assert ivf.ntotal == 20_000 and ivf.list_sizes().sum() == 20_000
    _, self_ids = ivf.search(database[:500], 1, n_probe=1)  # each vector finds itself in its own cell
    assert (self_ids[:, 0] == torch.arange(500)).all()
    recalls = [neighbour_recall(ivf.search(queries, 10, n_probe=p)[1], truth) for p in (1, 4, 16, 64)]
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
    recalls = [neighbour_recall(lsh.search(queries, 10, n_tables=t)[1], truth) for t in (1, 2, 4, 8, 16)]
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
    assert neighbour_recall(indices, ref_indices[:, :10]) > 0.99  # float rounding may swap near-ties
    assert neighbour_recall(indices, truth) > 0.3  # 4 bytes for 32 numbers: coarse
    with pytest.raises(RuntimeError, match="train"):
        PQIndex(32, m=8).add(database)
    with pytest.raises(ValueError, match="divisible"):
        PQIndex(32, m=5)


# ----------------------------------------------------------------------------- fast search == reference search
@pytest.fixture(scope="module")
def small_indexes():
    x = clustered_vectors(6000 + 120, 16, n_clusters=30, spread=0.6, seed=11)
    database, queries = x[:6000], x[6000:]
    ivf = IVFIndex(16, 20).train(database).add(database[:4000]).add(database[4000:])  # two adds: ids continue
    lsh = LSHIndex(16, n_tables=16, n_bits=6, seed=2).add(database[:2500]).add(database[2500:])
    return ivf, lsh, queries


@pytest.mark.parametrize("n_probe", [1, 4, 20])
@pytest.mark.parametrize("k", [1, 10, 400])
def test_ivf_search_equals_its_reference(small_indexes, n_probe, k):
    ivf, _, queries = small_indexes
    values, indices = ivf.search(queries, k, n_probe=n_probe)
    assert_same_search((values, indices), ivf.reference_search(queries, k + 1, n_probe=n_probe))
    assert (indices == -1).any() == (k == 400 and n_probe == 1)  # k = 400 exceeds some cells (300 vectors on average)
    for search in (ivf.search, ivf.reference_search):  # float64 queries: converted to float32 first
        assert torch.equal(search(queries[:20].double(), k, n_probe)[1], search(queries[:20], k, n_probe)[1])


@pytest.mark.parametrize("n_tables", [1, 4, 16])
@pytest.mark.parametrize("k", [1, 10, 300])
def test_lsh_search_equals_its_reference(small_indexes, n_tables, k):
    _, lsh, queries = small_indexes
    values, indices = lsh.search(queries, k, n_tables=n_tables)
    assert_same_search((values, indices), lsh.reference_search(queries, k + 1, n_tables=n_tables))
    if k == 300 and n_tables == 1:
        assert (indices == -1).any()  # small buckets: padded


@pytest.mark.parametrize("n, n_q", [(5000, 600), (140_000, 40)])  # queries split over threads; database split
def test_pq_search_equals_its_reference_to_the_bit(n, n_q):
    x = clustered_vectors(n + n_q, 32, n_clusters=200, spread=0.6, seed=12)
    database, queries = x[:n], x[n:]
    database[1::7] = database[::7][: len(database[1::7])]  # duplicates: equal codes, equal scores
    pq = PQIndex(32, m=8, n_iter=4).train(database[:5000]).add(database)
    ref_values, ref_indices = pq.reference_search(queries, 64)  # a stable sort: its first k are the top k
    for k in (1, 10, 64):
        values, indices = pq.search(queries, k)
        assert torch.equal(indices, ref_indices[:, :k]) and torch.equal(values, ref_values[:, :k])  # to the bit
    tied = values[:, 1:] == values[:, :-1]
    assert tied.any() and (indices[:, 1:][tied] > indices[:, :-1][tied]).all()  # equal scores: smaller id first


def test_reference_searches_break_ties_like_the_fast_ones():
    # one-hot vectors, each eight times: every dot product is exact, so duplicates tie exactly
    database = torch.eye(8)[torch.arange(64) % 8]
    queries = torch.randn(5, 8, generator=torch.Generator().manual_seed(8))
    ivf = IVFIndex(8, 4).train(database).add(database)
    lsh = LSHIndex(8, n_tables=4, n_bits=2).add(database)
    for index, knob, settings in ((ivf, "n_probe", (1, 2, 4)), (lsh, "n_tables", (1, 4))):
        for s in settings:
            for k in (3, 20):
                fast = index.search(queries, k, **{knob: s})
                ref = index.reference_search(queries, k, **{knob: s})
                assert torch.equal(fast[1], ref[1]) and torch.equal(fast[0], ref[0]), (type(index).__name__, s, k)
    assert torch.equal(ivf.reference_search(queries, 64, n_probe=4)[1], brute_force(queries, database, 64)[1])


def test_reference_searches_check_their_inputs_like_the_fast_ones():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(9))
    for index in (IVFIndex(8, 4), LSHIndex(8, n_tables=2), PQIndex(8, m=2, n_bits=4)):
        with pytest.raises(RuntimeError, match="train|add"):
            index.reference_search(x[:2], 1)
        if index.needs_training:
            index.train(x)
        index.add(x)
        with pytest.raises(ValueError, match="dimension 8"):
            index.reference_search(torch.randn(2, 9), 1)
        with pytest.raises(ValueError, match="k must lie in"):
            index.reference_search(x[:2], 0)
