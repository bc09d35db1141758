"""Data-parallel training with PyTorch's own stack: ``torchrun`` + DistributedDataParallel.

Under ``torchrun --nproc_per_node N train.py ...`` every rank holds the resident data and
draws the same seeded batch of ``batch_size`` beats each step (the same generator on every
rank, augmentation included), then trains on its 1/N slice; DDP averages the gradients,
so each optimiser step sees the whole batch, as in one process: the learning rate, the
number of steps and the LR-decay schedule stay the config's. Every rank validates the
whole validation split (identical results); rank 0 alone writes TensorBoard, checkpoints
and the console. Without torchrun (WORLD_SIZE unset or 1) nothing here is used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank and world size (1 for a plain run)."""
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of a batch's indices (contiguous, sizes differing by at most one)."""
        return idx.tensor_split(self.size)[self.rank]

    def broadcast(self, value: object) -> object:
        """Rank 0's ``value`` on every rank (e.g. the run directory's name)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over ranks (in place)."""
        if self.distributed:
            dist.all_reduce(t)
        return t


def world_from_env(device: torch.device) -> World:
    """Join the torchrun job this process belongs to (gloo on CPU, NCCL on CUDA), or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size())
