"""Where the trainer's beats come from: the config's splits (``training_splits``), and its batches: the resident
training split, or a sharded beat store.

Both sources give ``steps(epoch)`` and ``batches(epoch, start)``: this rank's (beats, labels, rhythm)
on the model's device, minority beats already augmented when the config says so. When the training beats carry a
teacher's probabilities (``BeatDataset.targets``, ``ecgnet.training.distill``) those stand in for the labels.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from ..config import Config
from ..constants import TASKS
from ..data.augment import augment_minority, epoch_batches
from ..data.datasets import BeatDataset, Splits, load_splits, resolve_data_dir
from ..data.store import BeatStore, store_splits
from ..errors import EcgnetError
from .distributed import World
from .store_batches import Batch, StoreBatches


class ResidentSource:
    """The training split held as device tensors; each epoch's order is drawn from the run's generator.

    Under DDP every rank draws the same whole batch (augmentation included, so the
    generator advances alike) and keeps its slice of it.
    """

    def __init__(self, data: BeatDataset, cfg: Config, device: torch.device, world: World, generator: torch.Generator,
                 rhythm: bool) -> None:
        self.x, self.y = data.x.to(device), data.y.to(device)
        self.rhythm = data.rhythm.to(device) if rhythm else None
        self.targets = None if data.targets is None else data.targets.to(device)
        self.cfg, self.world, self.generator = cfg, world, generator
        self.majority = int(np.argmax(data.class_counts()))

    def steps(self, epoch: int) -> int:
        return math.ceil(len(self.y) / self.cfg.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        if start:
            raise EcgnetError("a run on resident data resumes at epoch boundaries only; mid-epoch checkpoints need a store")
        cfg, device = self.cfg, self.x.device
        for idx in epoch_batches(self.y.cpu(), cfg.batch_size, self.generator, cfg.imbalance == "balanced_sampling"):
            idx = idx.to(device, non_blocking=True)
            xb, yb = self.x[idx], self.y[idx]
            if cfg.augment:
                xb = augment_minority(xb, yb, self.majority, self.generator)
            rb = None if self.rhythm is None else self.rhythm[idx]
            if self.targets is not None:
                yb = self.targets[idx]
            if self.world.distributed:
                part = self.world.shard(torch.arange(len(idx), device=device))
                xb, yb, rb = xb[part], yb[part], None if rb is None else rb[part]
            yield xb, yb, rb


class StoreSource:
    """A beat store read window by window (``store_batches``); each rank reads its own shards.

    Augmentation draws from a generator seeded by (seed, epoch, step, rank), so a batch
    is the same whether its epoch ran through or resumed mid-way.
    """

    def __init__(self, store: BeatStore, cfg: Config, device: torch.device, world: World, rhythm: bool) -> None:
        if cfg.imbalance == "balanced_sampling":
            raise EcgnetError(f"imbalance 'balanced_sampling' draws from resident data; with a store ({store.path}) "
                              "use 'class_weights' or 'sqrt_class_weights'")
        self.stream = StoreBatches(store, cfg.batch_size, cfg.seed, world, cfg.shuffle_buffer)
        self.cfg, self.device, self.world, self.rhythm = cfg, device, world, rhythm
        self.majority = int(np.argmax(store.class_counts()))

    def steps(self, epoch: int) -> int:
        return self.stream.steps(epoch)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        for step, (xb, yb, rb) in enumerate(self.stream.batches(epoch, start), start):
            xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
            if self.cfg.augment:
                seed = np.random.SeedSequence([self.cfg.seed, epoch, step, self.world.rank]).generate_state(1)[0]
                xb = augment_minority(xb, yb, self.majority, torch.Generator().manual_seed(int(seed)))
            yield xb, yb, None if rb is None or not self.rhythm else rb.to(self.device, non_blocking=True)


def training_source(train: BeatDataset | BeatStore, cfg: Config, device: torch.device, world: World,
                    generator: torch.Generator, rhythm: bool) -> ResidentSource | StoreSource:
    """The batch source for ``train``: a store streams, a resident dataset is indexed."""
    if isinstance(train, BeatStore):
        return StoreSource(train, cfg, device, world, rhythm)
    return ResidentSource(train, cfg, device, world, generator, rhythm)


def training_splits(cfg: Config) -> Splits:
    """The config's splits: from its store, or the task's files in data_dir (resident)."""
    task = TASKS[cfg.task]
    if cfg.store:
        return store_splits(cfg.store, task)
    return load_splits(task, resolve_data_dir(cfg.data_dir, task), cfg.val_fraction, cfg.test_fraction, cfg.seed,
                       by_patients=cfg.split_by == "patients")
