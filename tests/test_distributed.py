"""Chapter 10, scaling out with torch.distributed.

covers: mmtutor.distributed (process, contrastive, search, cost, pictures, launch)

The pure pieces (merging shard results, shard bounds, cost models) are tested in this process; the
collectives, DDP and the sharded search run in two real gloo processes started by torchrun on loopback
(a free port, a timeout, no process left behind), and their results are compared with single-process
references built from the same seeds. A rank that raises must make the launch fail with its error.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import matplotlib
import pytest
import torch

from mmtutor.alignment import clip_loss
from mmtutor.distributed import (
    SEARCH_BLOCK,
    all_gather_bytes,
    all_reduce_bytes,
    all_reduce_seconds,
    choose_backend,
    data_parallel_step,
    digit_batch,
    digit_model,
    fit_latency_bandwidth,
    free_port,
    freeze_batchnorm,
    gather_with_grad,
    gathered_clip_loss,
    init_from_env,
    local_topk,
    merge_topk,
    negatives_per_sample,
    rank_device,
    run_command,
    saved_tensor_bytes,
    search_estimate,
    shard_bounds,
    tie_heavy_vectors,
    torchrun_command,
)
from mmtutor.distributed.launch import DemoConfig, demo_embeddings, search_data
from mmtutor.similarity import normalize, topk_search

matplotlib.use("Agg")

W = 2  # ranks per launch


def _sharded(queries, database, k, bounds):
    lists = [local_topk(queries, database[s:e], k, s) for s, e in bounds]
    return merge_topk([s for s, _ in lists], [i for _, i in lists], k)


# ----------------------------------------------------------------------------- pure pieces, one process


@pytest.mark.parametrize("kind", ["random", "ties", "duplicates"])
@pytest.mark.parametrize("world", [2, 3])
def test_merge_of_aligned_shards_equals_topk_search_bit_for_bit(kind, world):
    config = DemoConfig(search_n=5 * SEARCH_BLOCK + 333, search_q=300)
    queries, database = search_data(kind, config)
    for k in (1, 10, 37):
        want_s, want_i = topk_search(queries, database, k)
        got_s, got_i = _sharded(queries, database, k, shard_bounds(len(database), world))
        assert torch.equal(got_i, want_i) and torch.equal(got_s, want_s)


def test_exact_ties_survive_any_cut_and_are_broken_by_the_smaller_index():
    queries, database = tie_heavy_vectors(64, 16, seed=5), tie_heavy_vectors(3000, 16, seed=6)
    want_s, want_i = topk_search(queries, database, 25)
    assert (want_s[:, :-1] == want_s[:, 1:]).float().mean() > 0.5  # mostly ties
    for bounds in (shard_bounds(3000, 4, align=1), [(0, 7), (7, 1500), (1500, 1501), (1501, 3000)]):
        got_s, got_i = _sharded(queries, database, 25, bounds)
        assert torch.equal(got_i, want_i) and torch.equal(got_s, want_s)
    tied = got_s[:, :-1] == got_s[:, 1:]
    assert (got_i[:, :-1][tied] < got_i[:, 1:][tied]).all()


def test_uneven_cuts_are_right_up_to_rounding():
    """Cut elsewhere, a score may round differently (how, depends on the BLAS kernel), so near-ties may swap;
    every position still holds a score equal to the single-process one up to rounding."""
    queries, database = search_data("duplicates", DemoConfig(search_n=6000, search_q=200))
    want_s, want_i = topk_search(queries, database, 10)
    got_s, got_i = _sharded(queries, database, 10, shard_bounds(6000, 2, align=1))
    assert (got_s - want_s).abs().max() < 1e-6
    exact = (normalize(queries)[:, None, :].double() * normalize(database)[got_i].double()).sum(-1)  # (Q, k)
    assert (exact - want_s.double()).abs().max() < 1e-6  # the rows returned really have those scores


def test_local_topk_pads_small_and_empty_shards_and_adds_the_offset():
    q, x = torch.randn(3, 4), torch.randn(5, 4)
    s, i = local_topk(q, x[2:4], 4, offset=2)
    ref_s, ref_i = topk_search(q, x[2:4], 2)
    assert torch.equal(i[:, :2], ref_i + 2) and torch.equal(s[:, :2], ref_s)
    assert (i[:, 2:] == -1).all() and torch.isinf(s[:, 2:]).all()
    s, i = local_topk(q, x[:0], 3, offset=5)
    assert (i == -1).all()
    got = merge_topk([local_topk(q, x[a:b], 4, a)[0] for a, b in [(0, 1), (1, 1), (1, 5)]],
                     [local_topk(q, x[a:b], 4, a)[1] for a, b in [(0, 1), (1, 1), (1, 5)]], 4)
    assert torch.equal(got[1], topk_search(q, x, 4)[1])
    with pytest.raises(ValueError, match="D=4"):
        local_topk(q, torch.randn(5, 3), 2, 0)
    with pytest.raises(ValueError, match="candidates"):
        merge_topk([s], [i], 4)
    with pytest.raises(ValueError, match="one score list per index list"):
        merge_topk([s], [], 1)
    with pytest.raises(ValueError, match="same Q"):
        merge_topk([s, s[:1]], [i, i[:1]], 1)


def test_shard_bounds_cover_the_rows_at_block_multiples():
    for n, world, align in [(20_000, 2, 1024), (5, 3, 1024), (10, 3, 1), (4096, 4, 1024), (1, 1, 7)]:
        bounds = shard_bounds(n, world, align)
        assert len(bounds) == world and bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        assert all(s % align == 0 for s, _ in bounds)
        sizes = [e - s for s, e in bounds]
        assert max(sizes) - min(sizes) <= align
    with pytest.raises(ValueError, match="world_size"):
        shard_bounds(10, 0)


def test_tie_heavy_vectors_have_exact_scores():
    x = tie_heavy_vectors(200, 20, n_ones=4, seed=0)
    assert (x.sum(1) == 4).all()
    s, _ = topk_search(x, x, 200)
    assert torch.equal(s * 4, (s * 4).round())
    with pytest.raises(ValueError, match="power of 4"):
        tie_heavy_vectors(10, 20, n_ones=3)


def test_backend_choice_and_rank_devices(monkeypatch):
    assert choose_backend(torch.device("cpu"), 2) == "gloo"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    assert choose_backend(torch.device("cuda"), 1) == "nccl"
    assert choose_backend(torch.device("cuda"), 2) == "gloo"  # nccl refuses two ranks on one GPU
    assert rank_device("nccl", 1) == torch.device("cuda", 1) and rank_device("gloo", 1) == torch.device("cpu")
    with pytest.raises(ValueError, match="world_size"):
        choose_backend(torch.device("cpu"), 0)


def test_in_process_calls_need_a_process_group(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="torch.distributed.run"):
        init_from_env()
    with pytest.raises(RuntimeError, match="process group"):
        gather_with_grad(torch.randn(2, 3))
    with pytest.raises(ValueError, match="same shape"):
        gathered_clip_loss(torch.randn(2, 3), torch.randn(3, 3), 10.0)
    with pytest.raises(ValueError, match="logit_scale"):
        gathered_clip_loss(torch.randn(2, 3), torch.randn(2, 3), -1.0)


def test_torchrun_command_and_free_port():
    port = free_port()
    command = torchrun_command("mmtutor.distributed.launch", 2, ["--out", "x"], port=port)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in command and f"--master_port={port}" in command
    assert "--master_addr=127.0.0.1" in command and command[-4:] == ["-m", "mmtutor.distributed.launch", "--out", "x"]
    with pytest.raises(ValueError, match="nproc"):
        torchrun_command("m", 0)


def test_run_command_stops_what_runs_past_its_timeout(tmp_path):
    pid_file = tmp_path / "pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    start = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        run_command([sys.executable, "-c", script], timeout_s=3)
    assert time.perf_counter() - start < 30
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_cost_models():
    assert negatives_per_sample(128, 2, gathered=False) == 63 and negatives_per_sample(128, 2, gathered=True) == 127
    assert all_gather_bytes(1000, 4) == 3000 and all_reduce_bytes(1000, 4) == 1500
    assert all_reduce_seconds(1e6, 1, 1e-4, 1e9) == 0
    sizes = [2.0**p for p in range(10, 25, 2)]
    alpha, beta = fit_latency_bandwidth(sizes, [all_reduce_seconds(n, 2, 3e-5, 2e9) for n in sizes])
    assert math.isclose(alpha, 3e-5, rel_tol=1e-6) and math.isclose(beta, 2e9, rel_tol=1e-6)
    step = data_parallel_step(0.1, 1e6, 4, 3e-5, 2e9)
    assert math.isclose(step["compute"], 0.025) and step["communication"] > 0
    rows = {r["method"]: r for r in search_estimate(flops_per_s=1e11, pq_codes_per_s=1e9, k=10)}
    for r in rows.values():  # at M* machines a machine's share of the compute equals the network time
        m = r["network_bound_machines"]
        assert math.isclose(r["query_compute_s"] / m, 50e-6 + m * (384 * 4 + 10 * 12) / 1.25e9, rel_tol=1e-9)
    assert rows["exact (flat)"]["bytes"] == 1e9 * 384 * 4
    assert rows["IVF-PQ"]["bytes"] < rows["IVF-Flat"]["bytes"] / 6
    assert rows["exact (flat)"]["compute_over_network"] > rows["IVF-PQ"]["compute_over_network"]
    with pytest.raises(ValueError, match="multiple"):
        negatives_per_sample(10, 3, True)


def test_saved_tensor_bytes_counts_what_autograd_keeps():
    x = torch.randn(100, 10, requires_grad=True)
    assert saved_tensor_bytes(lambda: (x * x).sum()) == 100 * 10 * 4 + 4  # x once, and the result
    small, large = (saved_tensor_bytes(lambda n=n: clip_loss(torch.randn(n, 8, requires_grad=True),
                                                              torch.randn(n, 8, requires_grad=True), 10.0))
                    for n in (512, 1024))
    assert 3.5 < large / small < 4.1  # the logits: N^2


def test_digit_model_data_and_frozen_batchnorm():
    a, b = digit_model(seed=3), digit_model(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    x, ids = digit_batch(16)
    assert x.shape == (16, 1, 8, 8) and ids.shape == (16, 8) and ids.dtype == torch.long
    a.train()
    freeze_batchnorm(a)
    norms = [m for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and a.x_encoder.head.training


def test_pictures_draw():
    from mmtutor.distributed.pictures import MIXED, plot_collective, plot_step_times

    fig = plot_collective("all-reduce", [[1.0, 2.0], [3.0, 4.0]], [[4.0, 6.0], [4.0, 6.0]],
                          owners_after=[[MIXED, MIXED], [MIXED, MIXED]])
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    fig2, axes = plt.subplots(2, 2)
    assert plot_collective("gather", [[1.0], [2.0]], [[1.0, 2.0], []], axes=axes[1]) is fig2
    ax = plot_step_times({"1": {"compute": 0.1}, "2": {"compute": 0.05, "communication": 0.01}})
    assert len(ax.patches) == 4
    with pytest.raises(ValueError, match="every rank"):
        plot_collective("x", [[1.0]], [])


# ----------------------------------------------------------------------------- two real processes


def _strays(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (Linux /proc), other than this one."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in entry.joinpath("cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if pid != os.getpid()]


def _launch(out: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    command = torchrun_command("mmtutor.distributed.launch", W, ["--out", str(out), "--backend", "gloo", *args])
    result = run_command(command, timeout_s=timeout_s)
    if Path("/proc").exists():
        time.sleep(0.5)
        assert not _strays(str(out)), "the launch left processes behind"
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("launch")
    result = _launch(out)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(W)]
    tensors = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(W)]
    return ranks, tensors, DemoConfig(**ranks[0]["config"])


def test_launch_runs_two_gloo_ranks(run):
    ranks, _, _ = run
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == W for r in ranks)
    assert all(r["backend"] == "gloo" and r["device"] == "cpu" for r in ranks)


def test_collectives_match_one_process(run):
    ranks, _, _ = run
    c = [r["collectives"] for r in ranks]
    summed = torch.tensor([x["all_reduce"]["before"] for x in c]).sum(0)
    for x in c:
        assert torch.allclose(torch.tensor(x["all_reduce"]["after"]), summed, atol=1e-5)
        assert x["broadcast"]["after"] == c[0]["broadcast"]["before"]
        assert x["all_gather"]["after"] == [v for y in c for v in y["all_gather"]["before"]]
    assert c[0]["gather"]["after"] == c[0]["all_gather"]["after"] and c[1]["gather"]["after"] == []


def test_gathered_loss_equals_the_full_batch_loss_in_value_and_gradient(run):
    ranks, tensors, config = run
    U, T = (x.clone().requires_grad_() for x in demo_embeddings(config))
    full = clip_loss(U, T, config.emb_scale)
    full.backward()
    for r in ranks:
        assert math.isclose(r["gather"]["gathered"], full.item(), rel_tol=1e-6)
        assert abs(r["gather"]["local_only"] - full.item()) > 0.1
    assert math.isclose(sum(r["gather"]["gathered_local_loss"] for r in ranks) / W, full.item(), rel_tol=1e-6)
    for name in ("gathered", "gathered_local_loss"):
        for key, grad in (("grad_image", U.grad), ("grad_text", T.grad)):
            got = torch.cat([t["gather"][name][key] for t in tensors]) / W  # W copies summed by the backward
            torch.testing.assert_close(got, grad, atol=1e-6, rtol=1e-5)


def _one_step(config, loss_of, live_batchnorm=False):
    model = digit_model(seed=0)
    if not live_batchnorm:
        freeze_batchnorm(model)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    loss_of(model).backward()
    opt.step()
    return dict(model.named_parameters())


def test_ddp_step_equals_single_process_training(run):
    ranks, tensors, config = run
    x, ids = digit_batch(config.batch, seed=0)
    b = config.batch // W
    full = _one_step(config, lambda m: clip_loss(*m(x, ids)))
    per_shard = _one_step(config, lambda m: sum(clip_loss(*m(x[r * b:(r + 1) * b], ids[r * b:(r + 1) * b]))
                                               for r in range(W)) / W)
    live = _one_step(config, lambda m: clip_loss(*m(x, ids)), live_batchnorm=True)
    ddp = tensors[0]["ddp"]
    for name, reference in (("gathered", full), ("local", per_shard)):
        assert all(r["ddp"][name]["max_gap_between_ranks"] == 0 for r in ranks)
        for key, p in reference.items():
            torch.testing.assert_close(ddp[name][key], p.detach(), atol=1e-6, rtol=1e-5)
    gap = max((ddp["local"][k] - p.detach()).abs().max().item() for k, p in full.items())
    assert gap > 1e-4, "local negatives only: not the full-batch step"
    gap = max((ddp["gathered_live_bn"][k] - p.detach()).abs().max().item() for k, p in live.items())
    assert gap > 1e-4, "live batch norm sees half batches: not the full-batch step"


def test_sharded_search_under_torchrun_equals_topk_search(run):
    ranks, tensors, config = run
    for kind in ("random", "ties", "duplicates"):
        queries, database = search_data(kind, config)
        want_s, want_i = topk_search(queries, database, config.k)
        got = tensors[0]["search"][f"{kind}/aligned"]
        assert torch.equal(got["indices"], want_i) and torch.equal(got["scores"], want_s)
        assert ranks[0]["search"][f"{kind}/aligned"]["bounds"][1][0] % SEARCH_BLOCK == 0
    got = tensors[0]["search"]["ties/even"]
    assert torch.equal(got["indices"], topk_search(*search_data("ties", config), config.k)[1])
    assert "search" not in tensors[1] or not tensors[1]["search"]  # only rank 0 merges


def test_timing_demo_reports_the_median_and_the_fastest_of_its_repetitions(run):
    """What the chapter times, and in what form (no assert on a time itself: those depend on the machine)."""
    ranks, _, config = run
    pieces = {"compute_full_batch", "compute_local_batch", "all_reduce_grads", "all_gather_embeddings", "ddp_step"}
    for r in ranks:
        t = r["timing"]
        assert t["reps"] == config.reps and set(t["median"]) == set(t["fastest"]) == pieces
        assert all(0 < t["fastest"][k] <= t["median"][k] for k in pieces)
        assert t["sweep_bytes"] == [4 * 2**p for p in range(8, 23, 2)]  # 1 KB .. 16 MB
        assert all(0 < f <= m for f, m in zip(t["sweep_fastest_s"], t["sweep_median_s"], strict=True))
        assert t["grad_bytes"] == 4 * sum(p.numel() for p in digit_model(seed=0).parameters())


def test_a_failing_rank_fails_the_launch_with_its_error(tmp_path):
    start = time.perf_counter()
    result = _launch(tmp_path, "--demos", "collectives", "--fail-rank", "1", timeout_s=240)
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr
    assert "Root Cause" in result.stderr
    assert time.perf_counter() - start < 240
    assert not (tmp_path / "rank0.json").exists()


def test_a_hanging_launch_is_stopped_by_the_timeout_or_by_killing_its_launcher(tmp_path):
    args = ["--demos", "collectives", "--hang-rank", "1"]
    with pytest.raises(subprocess.TimeoutExpired):  # run_command: SIGTERM to torchrun, which stops its ranks
        _launch(tmp_path / "a", *args, timeout_s=20)
    marker = str(tmp_path / "b")
    command = torchrun_command("mmtutor.distributed.launch", W, ["--out", marker, "--backend", "gloo", *args])
    agent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                             text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(agent.stdout), daemon=True).start()
    try:
        deadline = time.time() + 120
        # count the messages, not the lines: the ranks write to one pipe, and two messages can arrive as one line
        while sum(line.count("joined the process group") for line in lines) < W and time.time() < deadline:
            time.sleep(0.2)
        assert len(_strays(marker)) == 1 + W, lines  # the launcher and its ranks, which joined the group
        os.killpg(agent.pid, signal.SIGKILL)  # no chance to stop its ranks: they must notice by themselves
        agent.wait(10)
        deadline = time.time() + 20
        while _strays(marker) and time.time() < deadline:
            time.sleep(0.5)
        assert not _strays(marker), "ranks outlived their killed launcher"
    finally:
        for pid in _strays(marker):
            os.kill(pid, signal.SIGKILL)

