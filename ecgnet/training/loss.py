"""The training objective: cross-entropy or the focal loss, optionally weighted by class."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config
from ..data.datasets import Splits


@dataclass(frozen=True)
class BeatLoss:
    """Mean loss of a batch: each beat's cross-entropy, times ``(1 - p_true) ** focal_gamma`` (the focal loss,
    Lin et al. 2017: beats the model already gets right weigh less, so training dwells on the hard ones), times
    its class's ``weight``; the mean is weighted as ``F.cross_entropy``'s (sum over the sum of the weights).
    Targets may be probabilities (n, n_classes) instead of labels: a teacher's (``ecgnet.training.distill``),
    learnt by plain cross-entropy."""

    weight: torch.Tensor | None = None
    focal_gamma: float = 0.0

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.to(logits.device)
        if not self.focal_gamma or labels.ndim == 2:
            return F.cross_entropy(logits, labels, weight=weight)
        log_p = logits.log_softmax(1).gather(1, labels[:, None])[:, 0]
        per_beat = -(1 - log_p.exp()).pow(self.focal_gamma) * log_p
        beat_weight = torch.ones_like(per_beat) if weight is None else weight[labels]
        return (beat_weight * per_beat).sum() / beat_weight.sum()


def class_weights(splits: Splits, cfg: Config, device: torch.device) -> torch.Tensor | None:
    """Inverse-frequency loss weights (``class_weights``) or their square root (``sqrt_class_weights``), at most
    ``cfg.class_weight_cap`` times the most frequent class's weight when that is set; else None."""
    if cfg.imbalance not in ("class_weights", "sqrt_class_weights"):
        return None
    counts = splits.train.class_counts()
    weights = len(splits.train) / (len(counts) * np.maximum(counts, 1))
    if cfg.imbalance == "sqrt_class_weights":
        weights = np.sqrt(weights)
    if cfg.class_weight_cap > 0:
        weights = np.minimum(weights, cfg.class_weight_cap * weights.min())
    return torch.tensor(weights, dtype=torch.float32, device=device)


def training_loss(splits: Splits, cfg: Config, device: torch.device) -> BeatLoss:
    """The loss ``cfg`` trains with on ``splits``' training beats (also the validation loss that is logged). A student
    learns its teacher's probabilities unweighted: they carry the teacher's class balance already."""
    if cfg.teacher:
        return BeatLoss()
    return BeatLoss(class_weights(splits, cfg, device), cfg.focal_gamma)
