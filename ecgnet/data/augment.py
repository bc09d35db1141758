"""Batches of one training epoch and the paper's beat augmentation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..constants import BEAT_LENGTH


def epoch_batches(labels: torch.Tensor, batch_size: int, generator: torch.Generator, balanced: bool) -> list[torch.Tensor]:
    """Index batches for one epoch: a random permutation, or class-balanced draws with replacement."""
    n = len(labels)
    if balanced:
        counts = torch.bincount(labels).clamp(min=1).double()
        order = torch.multinomial((1.0 / counts)[labels], n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


def augment_beats(x: torch.Tensor, generator: torch.Generator, amplitude: float = 0.1, stretch: float = 0.1) -> torch.Tensor:
    """The paper's augmentation: scale each beat's amplitude by U(1±a) and stretch it in time by U(1±s).

    Stretching resamples the beat by linear interpolation on the same 187-sample grid
    (samples beyond the original end read as zero padding). x: (B, 1, 187).
    """
    b = x.shape[0]
    scale = 1 + amplitude * (2 * torch.rand(b, 1, generator=generator) - 1)
    factor = 1 + stretch * (2 * torch.rand(b, 1, generator=generator) - 1)
    scale, factor = scale.to(x.device), factor.to(x.device)
    pos = torch.arange(BEAT_LENGTH, device=x.device, dtype=torch.float32) / factor  # (B, 187) source positions
    left = pos.floor().long()
    frac = pos - left
    padded = F.pad(x[:, 0], (0, 2))  # reads past the end give zeros
    left = left.clamp(max=BEAT_LENGTH)
    y = padded.gather(1, left) * (1 - frac) + padded.gather(1, left + 1) * frac
    return (y * scale).unsqueeze(1)


def augment_minority(xb: torch.Tensor, yb: torch.Tensor, majority: int, generator: torch.Generator) -> torch.Tensor:
    """``xb`` with every beat outside the ``majority`` class augmented (the paper augments minority classes);
    channels after the beat (its record's template, ``ecgnet.signals.template``) stay as they are."""
    minority = (yb != majority).nonzero().squeeze(1)
    if len(minority) == 0:
        return xb
    augmented = augment_beats(xb[minority, :1], generator)
    return xb.index_copy(0, minority, torch.cat([augmented, xb[minority, 1:]], 1))
