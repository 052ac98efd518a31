"""Data parallelism over torch.distributed: each rank works on a shard of a list of work units, and every rank
gets all the results back in the list's order (`sharded_map`).

`torchrun --nproc-per-node N -m attnsteer ...` (and `accelerate launch`) set RANK, WORLD_SIZE and LOCAL_RANK.
Without them, or with WORLD_SIZE=1, a run is single-process and nothing here touches torch.distributed; the
module is light to import (torch loads only when a process group starts).

Shards are strided, rank r taking units r, r + N, r + 2N, ...: the unit lists are ordered by kind or cost
(scoring examples before generation batches, short profiling items before long ones, low layers before high
ones), so contiguous chunks would hand one rank the expensive end; strided shards interleave it. A rank with
no units (N > units) still joins every gather.

Results are all-gathered, not only sent to rank 0: the ranks then take the same next steps (a sweep reads the
table's metrics, coarse-to-fine picks layers from its first pass, k is chosen by comparing objectives), so their
collective calls stay in step. Only rank 0 (`is_main`) writes files and shows progress.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from attnsteer.errors import AttnsteerError

# How long a rank waits in a gather for the others (torch's default, 30 min for gloo, is too short: a rank with
# a heavy shard, or llmsteer's single unit on rank 0, may take hours on a CPU while the rest wait).
GATHER_TIMEOUT = timedelta(days=7)
T = TypeVar("T")
R = TypeVar("R")


class DistributedError(AttnsteerError):
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK) is malformed, or a process group cannot start."""


def world() -> tuple[int, int]:
    """(rank, world_size) from the torchrun environment; (0, 1) when WORLD_SIZE is unset."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise DistributedError(f"RANK={rank} and WORLD_SIZE={size}: need WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE")
    return rank, size


def is_main() -> bool:
    """Whether this process is rank 0 (a single-process run is): the one that prints and writes."""
    return world()[0] == 0


def local_process() -> tuple[int, int]:
    """(this process's index on its machine, processes on the machine): LOCAL_RANK and LOCAL_WORLD_SIZE, (0, 1)
    when unset."""
    return _env_int("LOCAL_RANK", 0), _env_int("LOCAL_WORLD_SIZE", 1)


def rank_device(device: str) -> str:
    """`device` for this rank: under torchrun, "cuda" without an index is this rank's own GPU (cuda:LOCAL_RANK), so
    `--device-map cuda` gives each rank's copy of the model a GPU of its own; any other value is returned as is."""
    if device.strip() == "cuda" and world()[1] > 1:
        return f"cuda:{local_process()[0]}"
    return device


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items rank `rank` of `world_size` works on: items[rank], items[rank + world_size], ... (strided;
    see the module docstring). Over all ranks, every item exactly once; empty when rank >= len(items)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise DistributedError(f"shard needs world_size >= 1 and 0 <= rank < world_size, got {rank} of {world_size}")
    return list(items[rank::world_size])


def unshard(parts: Sequence[Sequence[T]]) -> list[T]:
    """The inverse of `shard`: parts[r] = shard(items, r, len(parts)) for every rank r -> items, in order."""
    size, total = len(parts), sum(len(part) for part in parts)
    for rank, part in enumerate(parts):
        if len(part) != len(range(rank, total, size)):
            raise DistributedError(f"rank {rank} returned {len(part)} results; its shard of {total} has "
                                   f"{len(range(rank, total, size))}")
    return [parts[index % size][index // size] for index in range(total)]


def init_from_env(device: Any = None) -> str | None:
    """Start the process group once (backend: `pick_backend` for `device`, the model's) and return its backend.
    Single-process (WORLD_SIZE unset or 1): None, and torch.distributed is left alone."""
    rank, size = world()
    if size == 1:
        return None
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return str(dist.get_backend())
    backend = pick_backend(device, _env_int("LOCAL_WORLD_SIZE", size))
    if backend == "nccl":
        torch.cuda.set_device(local_process()[0])  # this rank's GPU carries its collectives
    try:
        dist.init_process_group(backend, rank=rank, world_size=size, timeout=GATHER_TIMEOUT)
    except (ValueError, RuntimeError) as error:
        raise DistributedError(f"WORLD_SIZE={size}, but the {backend} process group did not start (launch with "
                               f"torchrun, which also sets MASTER_ADDR and MASTER_PORT): {error}") from None
    atexit.register(_finish)
    return backend


def pick_backend(device: Any, local_world_size: int) -> str:
    """"nccl" when the model is on a CUDA device and each of the node's `local_world_size` ranks can have a GPU of
    its own for the collectives (nccl refuses two ranks on one GPU); else "gloo". Every rank sees the same facts
    (the same command places every rank's model alike), so all ranks pick the same backend."""
    import torch

    on_cuda = device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available()
    return "nccl" if on_cuda and torch.cuda.device_count() >= local_world_size else "gloo"


def gather_in_order(local: Sequence[T]) -> list[T]:
    """Every rank's results, in the order of the units they were computed from: `local` holds this rank's
    results for `shard(units, rank, world_size)`, in that order. Single-process: `local` as a list."""
    _, size = world()
    if size == 1:
        return list(local)
    import torch.distributed as dist

    init_from_env()
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, list(local))
    return unshard(parts)


def sharded_map(compute: Callable[[T], R], units: Sequence[T]) -> list[R]:
    """[compute(unit) for unit in units], each rank computing its shard; every rank gets the whole list.

    compute must be deterministic and depend on its unit alone (not on which units ran before it), so a
    unit's result is the same on whichever rank computes it; results must pickle (tensors on the CPU).
    """
    rank, size = world()
    return gather_in_order([compute(unit) for unit in shard(units, rank, size)])


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"{name}={value!r} is not an integer (torchrun sets it)") from None


def _finish() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
