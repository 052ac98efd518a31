"""`attnsteer.distributed` without torchrun: strided shards cover every item once for any world size, `unshard`
restores the order, single-process runs leave torch.distributed alone; and `run_attnsteer`, the helper the
2-rank end-to-end tests (tests/evaluation, tests/profiling) launch the CLI with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from attnsteer.distributed import (
    DistributedError,
    gather_in_order,
    init_from_env,
    is_main,
    pick_backend,
    shard,
    sharded_map,
    unshard,
    world,
)
from tests.import_check import heavy_modules_after

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def run_attnsteer(args: list[str], cwd: Path, ranks: int) -> subprocess.CompletedProcess[str]:
    """`python -m attnsteer ARGS` (ranks 1) or `torchrun --standalone --nproc-per-node RANKS -m attnsteer ARGS`,
    in `cwd` (created), one thread per process (the same per-process arithmetic in both). Fails the test with
    the command's output when it fails."""
    launcher = [sys.executable, "-m", "attnsteer"] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m", "attnsteer"]
    env = {key: value for key, value in os.environ.items() if key not in TORCHRUN_VARIABLES}
    cwd.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([*launcher, *args], cwd=cwd, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{ranks} rank(s) failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def single_process(monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 13])
def test_shards_cover_every_item_exactly_once_in_a_fixed_strided_order(world_size, count):
    items = [f"item{index}" for index in range(count)]
    shards = [shard(items, rank, world_size) for rank in range(world_size)]
    assert sorted(item for part in shards for item in part) == sorted(items)  # each exactly once
    for rank, part in enumerate(shards):
        assert part == [items[index] for index in range(rank, count, world_size)]  # strided
        assert part == shard(items, rank, world_size)  # deterministic
    assert all(shards[rank] == [] for rank in range(count, world_size))  # more ranks than items: empty shards
    assert unshard(shards) == items


def test_shard_of_a_tuple_and_of_results_keeps_their_order():
    results = [[f"result of {item}" for item in shard(range(10), rank, 3)] for rank in range(3)]
    assert unshard(results) == [f"result of {item}" for item in range(10)]
    assert shard((5, 6, 7), 1, 2) == [6]


def test_bad_ranks_and_results_are_refused():
    with pytest.raises(DistributedError, match="0 <= rank < world_size, got 2 of 2"):
        shard([1, 2], 2, 2)
    with pytest.raises(DistributedError, match="world_size >= 1"):
        shard([1, 2], 0, 0)
    with pytest.raises(DistributedError, match="rank 0 returned 1 results; its shard of 3 has 2"):
        unshard([[1], [2, 3]])


def test_without_torchrun_a_run_is_one_process_and_touches_no_process_group(single_process):
    assert world() == (0, 1) and is_main()
    assert init_from_env("cpu") is None
    assert gather_in_order((3, 1, 2)) == [3, 1, 2]
    assert sharded_map(lambda value: value * 10, [1, 2, 3]) == [10, 20, 30]
    import torch.distributed as dist

    assert not dist.is_initialized()


def test_world_reads_the_torchrun_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert world() == (3, 4) and not is_main()
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(DistributedError, match="RANK=4 and WORLD_SIZE=4"):
        world()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistributedError, match="WORLD_SIZE='two' is not an integer"):
        world()


def test_the_module_and_the_evaluation_runner_import_no_torch():
    code = ("import sys, attnsteer.distributed as d, attnsteer.evaluation.runner\n"
            "assert d.world() == (0, 1) and d.init_from_env() is None and d.sharded_map(str, [1]) == ['1']")
    assert heavy_modules_after(code) == []


def test_the_backend_is_nccl_only_with_the_model_on_cuda_and_a_gpu_per_rank(monkeypatch):
    import torch

    assert pick_backend("cpu", 2) == pick_backend(None, 1) == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_backend("cuda:1", 2) == pick_backend(torch.device("cuda", 0), 1) == "nccl"
    assert pick_backend("cuda:0", 3) == "gloo"  # three ranks, two GPUs
    assert pick_backend("cpu", 2) == "gloo"


def test_cuda_means_each_ranks_own_gpu_under_torchrun(monkeypatch, single_process):
    from attnsteer.cli.options import placement_options
    from attnsteer.distributed import rank_device

    assert rank_device("cuda") == "cuda" and rank_device("cuda:1") == "cuda:1"  # one process: unchanged
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_device("cuda") == "cuda:1"  # rank 3 is the second process of its node
    assert rank_device("cuda:0") == "cuda:0" and rank_device("auto") == "auto"  # what the user pinned stays
    assert placement_options("cuda", None, None)["device_map"] == "cuda:1"
