"""Calibrated confidence: temperature scaling (Guo et al. 2017), expected calibration error, coverage.

One scalar T divides the logits: ``softmax(logits / T)``. T > 0 never changes which class
is largest, so accuracy is untouched; only how sure the model says it is changes. T is
fitted on the validation split (minimum cross-entropy) and stored with the weights.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics import ECE_BINS, coverage_table, expected_calibration_error, reliability_bins

TEMPERATURE_RANGE = (0.05, 20.0)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 that minimises the cross-entropy of ``softmax(logits / T)`` against ``labels``."""
    logits, labels = logits.detach().float().cpu().clone(), labels.cpu()  # clone: may be an inference-mode tensor
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(np.clip(log_t.exp().item(), *TEMPERATURE_RANGE))


def calibration_report(logits: torch.Tensor, labels: torch.Tensor, temperature: float,
                       adjust: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """ECE before and after dividing by ``temperature``, reliability bins of both, coverage after; ``adjust``
    (probabilities -> probabilities, e.g. the S -> N rule of ``ecgnet.signals.fibrillation``) is applied to both first."""
    y = labels.numpy()
    adjust = adjust or (lambda p: p)
    raw = adjust(logits.softmax(1).numpy())
    calibrated = adjust((logits / temperature).softmax(1).numpy())
    return {"temperature": temperature, "bins": ECE_BINS,
            "ece_uncalibrated": expected_calibration_error(raw, y), "ece": expected_calibration_error(calibrated, y),
            "reliability_uncalibrated": reliability_bins(raw, y), "reliability": reliability_bins(calibrated, y),
            "coverage": coverage_table(calibrated, y),
            "coverage_curve": coverage_table(calibrated, y, tuple(np.round(np.linspace(0.3, 0.995, 40), 4).tolist()))}
