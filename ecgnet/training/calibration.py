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

ECE_BINS = 15
COVERAGE_THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)
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


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Per equal-width confidence bin: beats, mean confidence and accuracy of the top class."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, bins) / count
        acc = np.bincount(which, correct.astype(float), bins) / count
    return {"count": count.tolist(), "confidence": np.nan_to_num(conf).tolist(), "accuracy": np.nan_to_num(acc).tolist()}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the beat-weighted mean gap between confidence and accuracy over ``bins`` equal-width bins."""
    b = reliability_bins(probs, labels, bins)
    count = np.asarray(b["count"])
    gap = np.abs(np.asarray(b["confidence"]) - np.asarray(b["accuracy"]))
    return float((count * gap).sum() / max(count.sum(), 1))


def coverage_table(probs: np.ndarray, labels: np.ndarray, thresholds: tuple[float, ...] = COVERAGE_THRESHOLDS) -> list[dict]:
    """For each confidence threshold P: the share of beats kept (top probability >= P) and their accuracy."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    rows = []
    for p in thresholds:
        kept = confidence >= p
        rows.append({"threshold": p, "coverage": float(kept.mean()) if len(kept) else 0.0,
                     "accuracy": float(correct[kept].mean()) if kept.any() else float("nan"), "kept": int(kept.sum())})
    return rows


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
