"""Irregular rhythm (likely atrial fibrillation) around each beat, and what it implies for the beat's class.

In atrial fibrillation the R-R intervals are irregularly irregular, so beats come early at random: a
beat-level classifier reads them as premature, i.e. supraventricular (S). By the AAMI and MIT-BIH
convention they are N: there is no sinus rhythm for a beat to be premature against. The test for
fibrillation is Dash et al. 2009 (Ann Biomed Eng 37:1701), on the 128 R-R intervals around each beat
with the 8 longest and 8 shortest left out (they are ectopic beats or detection errors): the rhythm is
irregular when all three hold:

- normalised RMSSD (root mean square of successive differences over the mean interval) > 0.1;
- Shannon entropy of the intervals in 16 equal bins, over log 16, > 0.7 (frequent ectopic beats, as in
  bigeminy, give a few distinct intervals: low entropy);
- turning-point ratio within 0.54-0.77 (a random sequence has 2/3; alternating rhythms have more).

The thresholds are the paper's; they are not fitted to any of the MIT-BIH test records.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WINDOW_INTERVALS = 128
TRIMMED = 8                   # longest and shortest intervals left out of each window
NRMSSD_MIN = 0.1
ENTROPY_MIN = 0.7
ENTROPY_BINS = 16
TURNING_POINTS = (0.54, 0.77)
GATED_CLASS, INTO_CLASS = "S", "N"   # within irregular rhythm an S call becomes N


def irregular_rhythm(rr_s: np.ndarray) -> np.ndarray:
    """Per beat, whether the rhythm around it is irregular as in atrial fibrillation (bool, same length).

    ``rr_s``: each beat's R-R interval before it, in beat order, for one recording (the ``pre_rr``
    rhythm feature). Windows are centred on the beat (held at the ends); a recording shorter than one
    window is judged as a whole.
    """
    rr = np.asarray(rr_s, dtype=np.float64)
    n = len(rr)
    width = min(WINDOW_INTERVALS, n)
    if width < 2 * TRIMMED + 4:
        return np.zeros(n, bool)
    windows = sliding_window_view(rr, width)                      # (n - width + 1, width)
    ordered = np.sort(windows, axis=1)
    trim = TRIMMED * width // WINDOW_INTERVALS
    lo, hi = ordered[:, trim, None], ordered[:, width - 1 - trim, None]
    kept = (windows >= lo) & (windows <= hi)
    irregular = (_nrmssd(windows, kept) > NRMSSD_MIN) & (_entropy(windows, kept, lo, hi) > ENTROPY_MIN)
    tpr = _turning_point_ratio(windows, kept)
    irregular &= (tpr > TURNING_POINTS[0]) & (tpr < TURNING_POINTS[1])
    start = np.clip(np.arange(n) - width // 2, 0, len(windows) - 1)  # the window centred on each beat
    return irregular[start]


def irregular_in_records(rr_s: np.ndarray, records: np.ndarray) -> np.ndarray:
    """``irregular_rhythm`` of each record's beats in a prepared file (rows of a record in time order, as
    ``ecgnet prepare`` writes them; its ``pre_rr`` feature), record by record. A file holding a sample of a
    record's beats (the random split) is judged on the intervals it holds."""
    records = np.asarray(records)
    irregular = np.zeros(len(records), bool)
    for record in dict.fromkeys(records.tolist()):
        rows = np.flatnonzero(records == record)
        irregular[rows] = irregular_rhythm(np.asarray(rr_s)[rows])
    return irregular


def _nrmssd(windows: np.ndarray, kept: np.ndarray) -> np.ndarray:
    both = kept[:, 1:] & kept[:, :-1]
    sq = np.where(both, np.diff(windows, axis=1) ** 2, 0.0).sum(1) / np.maximum(both.sum(1), 1)
    mean = np.where(kept, windows, 0.0).sum(1) / np.maximum(kept.sum(1), 1)
    return np.sqrt(sq) / mean


def _entropy(windows: np.ndarray, kept: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.maximum(hi - lo, 1e-9)
    bins = np.clip(((windows - lo) / span * ENTROPY_BINS).astype(int), 0, ENTROPY_BINS - 1)
    counts = np.stack([((bins == b) & kept).sum(1) for b in range(ENTROPY_BINS)], axis=1).astype(np.float64)
    p = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(1) / np.log(ENTROPY_BINS)


def _turning_point_ratio(windows: np.ndarray, kept: np.ndarray) -> np.ndarray:
    d = np.diff(windows, axis=1)
    valid = kept[:, 2:] & kept[:, 1:-1] & kept[:, :-2]
    turning = (d[:, 1:] * d[:, :-1] < 0) & valid
    return turning.sum(1) / np.maximum(valid.sum(1), 1)


def gate_premature(probs: np.ndarray, irregular: np.ndarray, class_names: list[str] | tuple[str, ...]) -> np.ndarray:
    """``probs`` with the S probability of beats in irregular rhythm moved to N: a copy when that changes anything,
    ``probs`` itself when no beat is flagged or the task has no S and N classes."""
    if GATED_CLASS not in class_names or INTO_CLASS not in class_names or not np.any(irregular):
        return probs
    s, n = list(class_names).index(GATED_CLASS), list(class_names).index(INTO_CLASS)
    out = probs.copy()
    out[irregular, n] += out[irregular, s]
    out[irregular, s] = 0.0
    return out


class TrailingIrregularity:
    """``irregular_rhythm`` for a live stream: each new beat is judged on the window of intervals that ends at it
    (the offline path centres the window on the beat; a stream cannot wait for the intervals after it)."""

    def __init__(self) -> None:
        self.intervals: deque[float] = deque(maxlen=WINDOW_INTERVALS)

    def update(self, rr_s: float) -> bool:
        """Add the next beat's R-R interval before it (s); whether the rhythm up to that beat is irregular."""
        self.intervals.append(float(rr_s))
        return bool(irregular_rhythm(np.fromiter(self.intervals, float))[-1])
