"""Data parallelism for the lm-eval adapter: what lm-eval's evaluator asks of a model run by several processes.

Under `accelerate launch` (or `torchrun`) with N processes, lm-eval's evaluator gives each process every N-th
document (by the model's `rank`), pads the request lists to one length (`all_gather` of the counts), and
gathers the per-sample metrics and logged samples on rank 0 (`gather_object`), which alone reports and
writes the results. `DataParallel` provides those, from accelerate's `Accelerator` as lm-eval's `hf` model
does; one process is rank 0 of 1 and every collective is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import Any

import torch

from attnsteer.distributed import local_process, world


def launched_processes() -> int:
    """How many processes the launcher started (`WORLD_SIZE`, set by accelerate launch and torchrun; 1 if unset)."""
    return world()[1]


def join_processes() -> Any | None:
    """accelerate's `Accelerator` (its process group started) when this process is one of several, else None.

    On a machine without an accelerator (GPU) the processes run on the CPU and talk over gloo: `cpu=True`, which
    `accelerate launch --cpu` cannot start several processes with, is set here, so `torchrun --nproc_per_node N`
    and `accelerate launch --multi_gpu --num_processes N` both work there. The timeout is lm-eval's hf model's
    (a week: a process may wait long for the slowest one).
    """
    if launched_processes() <= 1:
        return None
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    accelerator = Accelerator(cpu=not torch.accelerator.is_available(),
                              kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(weeks=52))])
    return accelerator if accelerator.num_processes > 1 else None


def process_gpu_memory() -> dict[int, int]:
    """{GPU index: free bytes} of the GPUs this process places a model on: with several processes on a machine,
    those whose index is the local rank modulo the processes there (lm-eval's hf model's rule); {} without GPUs."""
    from accelerate.utils import get_max_memory

    rank, processes = local_process()
    return {gpu: free for gpu, free in get_max_memory().items()
            if isinstance(gpu, int) and gpu % processes == rank % processes}


class DataParallel:
    """The distributed side of an lm-eval `LM` (a mixin): rank, world size and the collectives lm-eval's
    evaluator calls. `_join(accelerator)` sets them; without one (a single process) they are no-ops."""

    accelerator: Any | None = None
    _rank: int
    _world_size: int

    def _join(self, accelerator: Any | None) -> None:
        """Take rank and world size from `accelerator` (`join_processes`); None: rank 0 of 1."""
        self.accelerator = accelerator
        if accelerator is not None:
            self._rank, self._world_size = accelerator.process_index, accelerator.num_processes

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` from every process, concatenated along dim 0 (a 0-d tensor gives [world_size])."""
        return tensor if self.accelerator is None else self.accelerator.gather(tensor)

    def gather_object(self, obj: Any, dst: int = 0) -> list[Any] | None:
        """Every process's `obj` on rank `dst` (a list in rank order); None on the other ranks."""
        if self.accelerator is None:
            return [obj]
        gathered = [None] * self.accelerator.num_processes if self.accelerator.process_index == dst else None
        torch.distributed.gather_object(obj, gathered, dst=dst)
        return gathered

    def barrier(self) -> None:
        """Wait for every process."""
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    @contextmanager
    def _main_process_first(self) -> Iterator[None]:
        """Inside the block, the main process runs first and the others wait for it (nothing with one process)."""
        with nullcontext() if self.accelerator is None else self.accelerator.main_process_first():
            yield
