"""Data-parallel training over processes started by ``torchrun`` (gloo on the CPU, NCCL on
CUDA); a no-op in a single process.

Every rank holds the whole model and reads the nights from the feature cache; each global
batch is cut into one slice per rank (:class:`RankBatches`), losses are normalised by
global sums (:func:`global_sum`) and gradients summed over ranks (:func:`sum_gradients`),
so the ranks together take the single-process step on the global batch. Rank 0 validates,
decides early stopping (:func:`broadcast_float`) and writes checkpoints, states and logs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

from edgesleep.errors import UsageError


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside ``torchrun``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the
    environment), once; return this rank's device (``cuda:LOCAL_RANK`` on CUDA)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UsageError(f"--device {device}: distributed training runs on cuda or cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. fills the feature cache), the others after it."""
    rank, size = world()
    if size > 1 and rank != 0:
        dist.barrier()
    yield
    if size > 1 and rank == 0:
        dist.barrier()


def global_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over ranks (no gradient flows through it)."""
    value = value.detach().clone()
    if world()[1] > 1:
        dist.all_reduce(value)
    return value


def sum_gradients(params: Sequence[nn.Parameter]) -> None:
    """Add every rank's gradients (one flat all-reduce; a missing gradient counts 0)."""
    if world()[1] == 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def broadcast_params(params: Sequence[torch.Tensor]) -> None:
    """Rank 0's values in every rank (the ranks start from the same weights)."""
    if world()[1] > 1:
        for p in params:
            dist.broadcast(p.data, 0)


def broadcast_float(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank."""
    if world()[1] == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, 0)
    return float(tensor.item())


def gather_objects(value: object) -> list[object]:
    """Every rank's ``value``, in rank order (``[value]`` in one process)."""
    if world()[1] == 1:
        return [value]
    out: list[object] = [None] * world()[1]
    dist.all_gather_object(out, value)
    return out


class RankBatches(torch.utils.data.Sampler):  # type: ignore[type-arg]
    """This rank's slice of each global batch drawn by ``sampler``: the ranks see disjoint
    slices that together are the single-process batch."""

    def __init__(self, sampler: torch.utils.data.Sampler, batch_size: int,  # type: ignore[type-arg]
                 drop_last: bool) -> None:  # fmt: skip
        rank, size = world()
        if batch_size % size:
            raise UsageError(f"--batch-size {batch_size} is not a multiple of the {size} ranks")
        self.batches = torch.utils.data.BatchSampler(sampler, batch_size, drop_last)
        self.rank, self.size = rank, size

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            share = len(batch) // self.size
            rest = len(batch) - share * self.size  # a short last batch: the first ranks
            start = self.rank * share + min(self.rank, rest)
            yield batch[start : start + share + (self.rank < rest)]
