"""Data-parallel training with ``torchrun`` (DDP): process group, data shards, reductions.

    torchrun --nproc_per_node=4 -m lra.run.train task=text model=performer

``task.optim.batch_size`` stays the **global** batch: every optimiser step consumes the same
examples as a single-process run (the seeded :class:`lra.run.batches.EpochOrder`), and rank ``r``
takes the ``r``-th contiguous slice of it (``batch_size / world_size`` examples, so
``batch_size`` must be divisible by ``world_size * trainer.grad_accum``). DDP averages the
gradients of equal-sized slices, which is the gradient of the global batch; evaluation splits
the eval batches across ranks and all-reduces correct counts. Backend: NCCL on CUDA, gloo on
CPU. Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``; ``local_rank`` picks its GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` as set by ``torchrun`` (defaults: 1 process)."""
    env = os.environ
    return DistInfo(
        int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
    )


def setup(info: DistInfo, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA devices, gloo otherwise) if there is one."""
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(
    model: torch.nn.Module, info: DistInfo, device: torch.device, seed: int
) -> torch.nn.Module:
    """What the training forward calls: ``model`` itself, or its DDP wrapper under torchrun.

    Rank 0 keeps the single-process random stream; every other rank reseeds, so its dropout
    masks differ from rank 0's.
    """
    if not info.enabled:
        return model
    ids = [device] if device.type == "cuda" else None
    wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if info.rank:
        torch.manual_seed(seed + 1_000_003 * info.rank)
    return wrapped


def check_batch(batch_size: int, world_size: int, grad_accum: int) -> None:
    """The global batch must split into equal per-rank micro-batches."""
    if batch_size % (world_size * grad_accum):
        raise ValueError(
            f"task.optim.batch_size={batch_size} is the global batch; it must be divisible by "
            f"world_size ({world_size}) x trainer.grad_accum ({grad_accum})"
        )


class ShardedOrder:
    """Rank ``rank``'s contiguous slice of each global batch of an ``EpochOrder``-like order."""

    def __init__(self, order, rank: int, world_size: int):
        self.order, self.rank, self.world_size = order, rank, world_size

    def indices(self, step: int) -> np.ndarray:
        """Example indices [batch_size / world_size] of step ``step`` for this rank."""
        return np.array_split(self.order.indices(step), self.world_size)[self.rank]


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few scalars over ranks (in float64); identity in a single process."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather_objects(obj):
    """List of ``obj`` from every rank (``[obj]`` in a single process)."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
