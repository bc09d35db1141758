"""Cross-validation over whole records, and per-class decision offsets fitted on its out-of-fold predictions.

With a few dozen patients, one held-out set of records is a noisy judge: the inter-patient
runs selected epochs 1-5 and their S sensitivity spread by +-24 points between seeds.
``record_folds`` gives every record of the training file to validation exactly once, so the
out-of-fold predictions cover all training patients, each predicted by a model that never saw
them. ``fit_class_offsets`` then sets one additive log-probability offset per class on those
predictions, never looking at the test set: a class-weighted model over-calls the rare classes
on new patients. Measured on MIT-BIH DS2 they overshoot on averaged models (docs/experiments.md).
"""
from __future__ import annotations

import numpy as np

from .errors import EcgnetError
from .metrics import macro_f1

OFFSET_GRID = np.linspace(-6.0, 6.0, 121)  # log-probability offsets tried per class (0.1 apart)
OFFSET_ROUNDS = 3                           # coordinate-ascent passes over the classes


def record_folds(records: np.ndarray, labels: np.ndarray, k: int, seed: int,
                 required: tuple[int, ...] = ()) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` seeded (train_rows, val_rows) pairs by whole records; each record is in exactly one val fold.

    Records are dealt rarest-class-first to the fold that holds the least of the classes
    they carry, so that each fold's validation records hold beats of every class in ``required``.
    """
    records = np.asarray(records).astype(str)
    names = np.unique(records)
    if not 2 <= k <= len(names):
        raise EcgnetError(f"cross-validation needs 2 <= folds <= {len(names)} records, got {k}")
    counts = np.array([[((records == r) & (labels == c)).sum() for c in required] for r in names]).reshape(len(names), -1)
    totals = np.maximum(counts.sum(0), 1)
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-(counts[order] / totals).sum(1), kind="stable")]
    held = np.zeros((k, counts.shape[1]))
    fold_of = np.empty(len(names), int)
    sizes = np.zeros(k, int)
    for i in order:
        share = counts[i] / totals
        cost = (held + share).max(1) + 1e-3 * sizes  # the fold whose largest class share stays smallest
        fold_of[i] = int(np.argmin(cost))
        held[fold_of[i]] += share
        sizes[fold_of[i]] += 1
    folds = []
    for f in range(k):
        val = np.isin(records, names[fold_of == f])
        missing = [c for c in required if not (labels[val] == c).any()]
        if missing:
            raise EcgnetError(f"cross-validation fold {f + 1} of {k} holds no beat of class(es) {missing}; use fewer folds")
        folds.append((np.flatnonzero(~val), np.flatnonzero(val)))
    return folds


def fit_class_offsets(log_probs: np.ndarray, labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """Additive offsets (n_classes,) for ``log_probs`` that maximise macro-F1 over ``classes`` (coordinate ascent).

    The first of ``classes`` is the reference (offset 0); classes not listed keep 0.
    Ties keep the offset nearest 0, so a class without evidence is left alone.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    offsets = np.zeros(log_probs.shape[1])
    best = macro_f1(labels, log_probs.argmax(1), classes)
    by_size = OFFSET_GRID[np.argsort(np.abs(OFFSET_GRID), kind="stable")]
    for _ in range(OFFSET_ROUNDS):
        before = best
        for c in classes[1:]:
            trial = offsets.copy()
            for value in by_size:
                trial[c] = value
                score = macro_f1(labels, (log_probs + trial).argmax(1), classes)
                if score > best + 1e-12:
                    best, offsets[c] = score, value
        if best <= before:
            break
    return offsets
