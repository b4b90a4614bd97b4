"""Training on several processes (GPUs, nodes) with torchrun and DistributedDataParallel.

``torchrun --nproc-per-node N -m samplernn_cli train ...`` starts N copies of the command
with RANK, LOCAL_RANK and WORLD_SIZE in their environment; :func:`from_environment` joins
them into one process group (NCCL on CUDA, gloo on the CPU). Each rank trains on its own
rows of every batch, DistributedDataParallel averages the gradients, and rank 0 alone
writes the run folder and logs. The few decisions that must agree on every rank (stop now?
the live settings; is this the best model?) travel in one small all-reduce per iteration.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from samplernn_cli.errors import TrainingError, UsageError

# How long a rank waits for the others at a collective: rank 0 alone validates and
# generates clips while the others wait, which can take a while on long validation audio.
COLLECTIVE_TIMEOUT = timedelta(hours=2)
T = TypeVar("T")


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_in_environment() -> int:
    """This process's rank under torchrun (0 when not distributed): only rank 0 reports."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This rank's rows of a global batch."""
        share = batch_size // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def barrier(self) -> None:
        collective(dist.barrier)

    def agree(self, values: list[float]) -> list[float]:
        """The element-wise maximum of ``values`` over all ranks."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        collective(lambda: dist.all_reduce(tensor, op=dist.ReduceOp.MAX))
        return tensor.tolist()

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over all ranks."""
        tensor = value.detach().to(self._comm_device, torch.float64).reshape(1)
        collective(lambda: dist.all_reduce(tensor, op=dist.ReduceOp.SUM))
        return float(tensor) / self.world_size

    def gather_rows(self, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """Every rank's ``tensor`` (same shape on each), concatenated along ``dim`` in rank
        order (rank 0's rows first)."""
        tensor = tensor.contiguous()
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        collective(lambda: dist.all_gather(parts, tensor))
        return torch.cat(parts, dim=dim)

    def wrap(self, model: torch.nn.Module, *, partly_used: bool) -> torch.nn.Module:
        """``model`` in DistributedDataParallel on this rank's device. ``partly_used``: some
        parameters get no gradient in some steps."""
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=partly_used,
        )

    @property
    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def close(self, *, finished: bool) -> None:
        """Leave the process group; after a normal end, all ranks together (one leaving
        while another still talks to it can abort the other's communication thread)."""
        if not dist.is_initialized():
            return
        # Gloo's worker threads may hold tensors of DistributedDataParallel's last
        # reductions; freeing them now, while the interpreter is fully alive, avoids an abort
        # ("terminate called without an active exception") when it shuts down.
        gc.collect()
        if finished:
            with contextlib.suppress(TrainingError):
                self.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def membership(dist: Distributed | None) -> Iterator[None]:
    """Leave the process group (if any) when the block ends: together with the other ranks
    after a normal end, at once after an error."""
    if dist is None:
        yield
        return
    try:
        yield
    except BaseException:
        dist.close(finished=False)
        raise
    dist.close(finished=True)


def collective(operation: Callable[[], T]) -> T:
    """Run a collective; a rank that died (or timed out) ends this one with a clear error."""
    try:
        return operation()
    except (RuntimeError, dist.DistBackendError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            f"lost contact with the other training processes ({first[:200]}); the first "
            "error above, from the rank that failed, says why"
        ) from None


def from_environment(device: torch.device, batch_size: int) -> Distributed | None:
    """Join the torchrun job this process belongs to (None when not started by torchrun).

    On CUDA each process takes the GPU of its LOCAL_RANK; ``batch_size`` (the global batch)
    must split evenly over the processes.

    Raises:
        UsageError: the batch does not split evenly, or there are fewer GPUs than processes
            on this node.
    """
    if not launched_by_torchrun():
        return None
    world_size = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if batch_size % world_size:
        raise UsageError(
            f"--batch_size {batch_size} does not split evenly over {world_size} processes; "
            "use a multiple of the process count (it is the global batch)"
        )
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"process {local_rank} on this node has no GPU of its own (there are "
                f"{torch.cuda.device_count()}); use --nproc-per-node {torch.cuda.device_count()}"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise UsageError(f"distributed training runs on CUDA or the CPU, not {device.type}")
    collective(lambda: dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT))
    return Distributed(rank=rank, world_size=world_size, device=device)
