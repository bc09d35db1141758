"""Training batches from a beat store in bounded memory: shard order, shuffle windows, ranks, resume.

Each epoch the shards are put in a seeded order (seed, epoch); under DDP rank r takes every
N-th shard of that order, files no other rank reads. A rank reads its shards in windows of
about ``buffer_beats`` beats (at least one shard), permutes each window with its own seeded
generator (seed, epoch, rank, window) and cuts the stream of windows into batches of
``batch_size / N`` beats, so memory holds one window, not the store.

Every batch is a function of (seed, epoch, rank, step): a resumed epoch starts at its step
and skips the windows before it unread. Under DDP every rank takes as many steps as the
rank with the fewest beats this epoch can fill; the others leave their last beats out of
this epoch (a different tail each epoch, since the shard order changes).
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from ..constants import BEAT_LENGTH
from ..data.store import BeatStore
from ..errors import EcgnetError
from .distributed import World

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # beats (b, 1, 187), labels (b,), rhythm (b, k) or None


class StoreBatches:
    """Seeded, resumable batches of one rank over a ``BeatStore``."""

    def __init__(self, store: BeatStore, batch_size: int, seed: int, world: World = World(), buffer_beats: int = 262_144) -> None:
        if batch_size % world.size:
            raise EcgnetError(f"batch_size {batch_size} does not split evenly over {world.size} ranks; choose a multiple of {world.size}")
        if len(store.shards) < world.size:
            raise EcgnetError(f"{store.path} has {len(store.shards)} shard(s) for {world.size} ranks; write it with a smaller "
                              "shard size so that every rank gets shards of its own")
        self.store, self.seed, self.world, self.buffer_beats = store, seed, world, buffer_beats
        self.local_batch = batch_size // world.size
        self.sizes = np.array([s["beats"] for s in store.shards])

    def order(self, epoch: int, rank: int | None = None) -> np.ndarray:
        """The shards ``rank`` (default: this one) reads in ``epoch``, in reading order."""
        permutation = np.random.default_rng([self.seed, epoch]).permutation(len(self.sizes))
        return permutation[self.world.rank if rank is None else rank::self.world.size]

    def steps(self, epoch: int) -> int:
        """Optimiser steps in ``epoch`` (alike on every rank)."""
        if self.world.size == 1:
            return math.ceil(self.sizes.sum() / self.local_batch)
        fewest = min(self.sizes[self.order(epoch, r)].sum() for r in range(self.world.size))
        if fewest < self.local_batch:
            raise EcgnetError(f"{self.store.path}: a rank gets {fewest} beats this epoch, fewer than its batch of "
                              f"{self.local_batch}; use a larger store, smaller shards or a smaller batch_size")
        return int(fewest // self.local_batch)

    def windows(self, epoch: int) -> list[np.ndarray]:
        """This rank's shards of ``epoch`` grouped into shuffle windows of up to ``buffer_beats`` beats (one shard at least)."""
        groups, current, beats = [], [], 0
        for shard in self.order(epoch):
            if current and beats + self.sizes[shard] > self.buffer_beats:
                groups.append(np.array(current))
                current, beats = [], 0
            current.append(shard)
            beats += self.sizes[shard]
        return groups + [np.array(current)] if current else groups

    def read_window(self, epoch: int, w: int, shards: np.ndarray) -> dict[str, np.ndarray]:
        """The beats of one window, read into memory and shuffled."""
        parts = [self.store.read(int(i)) for i in shards]
        n = int(self.sizes[shards].sum())
        permutation = np.random.default_rng([self.seed, epoch, self.world.rank, w]).permutation(n)
        return {k: np.concatenate([p[k] for p in parts])[permutation] for k in parts[0] if k != "records"}

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Batches ``start``, ``start + 1``, ... of ``epoch`` for this rank."""
        remaining = self.steps(epoch) - start
        skip = start * self.local_batch  # beats of this rank's stream before the first batch wanted
        pending: list[dict[str, np.ndarray]] = []
        n_pending = 0
        for w, shards in enumerate(self.windows(epoch)):
            size = int(self.sizes[shards].sum())
            if skip >= size:
                skip -= size
                continue
            window, i = self.read_window(epoch, w, shards), skip
            skip = 0
            while remaining and i < size:
                take = min(self.local_batch - n_pending, size - i)
                pending.append({k: v[i:i + take] for k, v in window.items()})
                n_pending, i = n_pending + take, i + take
                if n_pending == self.local_batch:
                    yield as_batch(pending)
                    pending, n_pending, remaining = [], 0, remaining - 1
            if not remaining:
                return
        if pending and remaining:  # one process: the epoch's last, smaller batch
            yield as_batch(pending)


def as_batch(pieces: list[dict[str, np.ndarray]]) -> Batch:
    """Tensors of a batch assembled from window slices."""
    def join(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in pieces])

    rhythm = torch.from_numpy(join("rhythm")) if "rhythm" in pieces[0] else None
    return torch.from_numpy(join("beats")).reshape(-1, 1, BEAT_LENGTH), torch.from_numpy(join("labels").astype(np.int64)), rhythm
