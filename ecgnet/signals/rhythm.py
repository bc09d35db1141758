"""Rhythm features of each beat, from the R positions of its record.

A single 187-sample beat that starts at its own R peak shows neither its prematurity
(the criterion for supraventricular beats) nor its P wave. These features restore the
rhythm: for beat i with R-R intervals ``rr[i] = t[i] - t[i-1]``,

- ``pre_rr``: the interval before the beat, ``post_rr``: the one after it;
- ``local_rr``: the mean of the (up to) 10 intervals ending at the beat;
- ``record_rr``: the record's average interval.

All in seconds, computed from any sorted R positions, with or without labels: reference
annotations when preparing data, the detector at prediction time (the same function).
The model sees them normalised by the record's own average (``rhythm_inputs``), so
that they mean the same for a slow and a fast heart, as log-ratios in units of 10%:
0 for a beat on its record's rhythm, about -4 for a beat that comes 35% early. On that
scale they stand out beside the trunk's learned features from the first steps.
"""
from __future__ import annotations

import numpy as np

from ..errors import EcgnetError

RHYTHM_FEATURES = ("pre_rr", "post_rr", "local_rr", "record_rr")
RHYTHM_INPUTS = ("pre/record", "post/record", "local/record", "pre/local", "post/pre")
LOCAL_BEATS = 10
RATIO_UNIT = 0.1          # log-ratio units of the model's rhythm inputs (about 10%)
RATIO_LIMIT = 10.0        # |input| cap: a gap of minutes must not dominate the head
PLAUSIBLE_RR_S = (0.2, 3.0)  # intervals outside (gaps, double detections) do not enter the record's average


def record_mean_rr(rr: np.ndarray) -> float:
    """The record's average R-R interval in seconds: the mean of plausible intervals (their median if none is)."""
    plausible = rr[(rr >= PLAUSIBLE_RR_S[0]) & (rr <= PLAUSIBLE_RR_S[1])]
    if len(plausible):
        return float(plausible.mean())
    if len(rr):
        return float(np.median(rr))
    raise EcgnetError("rhythm features need at least two beats in a record")


def rhythm_features(r_samples: np.ndarray, fs: float) -> np.ndarray:
    """(n, 4) float32 ``RHYTHM_FEATURES`` of each beat at sorted R positions ``r_samples`` (samples at ``fs``).

    The first beat has no interval before it and the last none after it: each takes the
    record's average there. ``local_rr`` averages the intervals available when fewer than 10 precede.
    """
    t = np.asarray(r_samples, dtype=np.float64) / fs
    if len(t) < 2:
        raise EcgnetError(f"rhythm features need at least two beats in a record, got {len(t)}")
    if np.any(np.diff(t) <= 0):
        raise EcgnetError("rhythm features need strictly increasing R positions")
    rr = np.diff(t)
    mean = record_mean_rr(rr)
    pre = np.concatenate([[mean], rr])
    post = np.concatenate([rr, [mean]])
    csum = np.concatenate([[0.0], np.cumsum(rr)])
    end = np.arange(len(t))                      # beat i's interval is rr[i - 1]: intervals [lo, i) of rr
    lo = np.maximum(end - LOCAL_BEATS, 0)
    count = end - lo
    local = np.where(count > 0, (csum[end] - csum[lo]) / np.maximum(count, 1), mean)
    return np.column_stack([pre, post, local, np.full(len(t), mean)]).astype(np.float32)


def rhythm_inputs(features: np.ndarray) -> np.ndarray:
    """(n, 5) ``RHYTHM_INPUTS`` for the model from (n, 4) ``RHYTHM_FEATURES``: log-ratios in ``RATIO_UNIT``s, independent of heart rate."""
    pre, post, local, record = (features[:, i].astype(np.float64) for i in range(4))
    ratios = np.column_stack([pre / record, post / record, local / record, pre / local, post / pre])
    return np.clip(np.log(ratios) / RATIO_UNIT, -RATIO_LIMIT, RATIO_LIMIT).astype(np.float32)


def check_rhythm(features: np.ndarray, n_beats: int, source: str) -> np.ndarray:
    """``features`` as float32 (n, 4) after checking count, shape and values (finite, positive)."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != len(RHYTHM_FEATURES):
        raise EcgnetError(f"{source}: rhythm features must be {len(RHYTHM_FEATURES)} columns ({', '.join(RHYTHM_FEATURES)}), "
                          f"got shape {features.shape}")
    if len(features) != n_beats:
        raise EcgnetError(f"{source}: {len(features)} rows of rhythm features for {n_beats} beats; "
                          "the side file does not belong to this beat file, prepare it again")
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1) | (features <= 0).any(axis=1))
    if len(bad):
        raise EcgnetError(f"{source}, row {bad[0] + 1}: rhythm features must be finite and positive, got {features[bad[0]].tolist()}")
    return features
