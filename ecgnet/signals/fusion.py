"""The 'fused' R-peak detector: three fast library detectors voting, with a search-back in R-R gaps.

Each fast detector fails in its own way on MIT-BIH: sleepecg drops runs of premature
ventricular beats (records 208, 221), NeuroKit2's takes tall T waves (231), Kalidas &
Tewfik's misses wide beats (208). Fusion, per recording:

1. detections of all detectors within 75 ms of each other are one candidate beat; it is
   accepted when two or more detectors found it (at the first detector's position);
2. an accepted beat whose QRS energy (|5-20 Hz band-pass| around it) is below 0.2 × the
   median of its 16 neighbours is dropped (a T or P wave two detectors agreed on);
3. search-back: a beat only one detector found is added when it lies in an R-R gap
   longer than 1.5 × the local median R-R, at least 0.45 × that median from both sides,
   with QRS energy at least 0.3 × its neighbours' (a missed beat, not a P wave in a pause).

The constants were chosen on mitdb from a grid of six; bench/detection.py scores the
result on all 48 records, and on the DS1 and DS2 halves separately (docs/benchmarks.md).
"""
from __future__ import annotations

import numpy as np

from .filters import butter_sos, moving_median, sosfiltfilt

FUSED_DETECTORS = ("sleepecg", "nk-neurokit", "nk-kalidas2017")  # the first one's positions are kept
MATCH_S = 0.075         # detections this close are one beat
QRS_BAND_HZ = (5.0, 20.0)
NEIGHBOURS = 17         # running medians over a beat and its 16 neighbours
GAP = 1.5               # an R-R this many local medians long has room for a missed beat
SPACING = 0.45          # a beat added in a gap keeps this many local medians from both sides
SEARCH_ENERGY = 0.3     # ... and has at least this share of its neighbours' QRS energy
DROP_ENERGY = 0.2       # an accepted beat below this share of its neighbours' QRS energy is dropped


def qrs_band(signal: np.ndarray, fs: float) -> np.ndarray:
    """|signal| band-passed to 5-20 Hz (the QRS complex's band), computed once per recording."""
    high = min(QRS_BAND_HZ[1], 0.45 * fs)
    return np.abs(sosfiltfilt(butter_sos(2, (QRS_BAND_HZ[0], high), "bandpass", fs), signal))


def window_argmax(values: np.ndarray, centres: np.ndarray, radius: int) -> np.ndarray:
    """Index of the largest of ``values`` (>= 0) within ``radius`` samples of each centre (the first one on ties), the
    window cut at the ends of ``values``: ``lo + argmax(values[lo:hi])`` for every centre at once."""
    padded = np.concatenate([np.full(radius, -1.0), values, np.full(radius, -1.0)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)[centres]
    return centres - radius + windows.argmax(1)


def qrs_energy(band: np.ndarray, fs: float, positions: np.ndarray) -> np.ndarray:
    """Largest value of ``band`` (``qrs_band``) within 50 ms of each position."""
    radius = max(1, int(round(0.05 * fs)))
    return band[window_argmax(band, positions, radius)] if len(positions) else np.zeros(0)


def vote(detections: list[np.ndarray], tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate beats (position, number of detectors that found it), in time order.

    A candidate takes the position of the first detector in ``detections`` that found
    it, else the median of the others' positions.
    """
    position = np.concatenate(detections).astype(np.int64)
    source = np.concatenate([np.full(len(d), i) for i, d in enumerate(detections)])
    order = np.lexsort((source, position))
    position, source = position[order], source[order]
    starts = [0]  # a candidate spans the detections within ``tolerance`` of its first one
    while True:
        nxt = int(np.searchsorted(position, position[starts[-1]] + tolerance, side="right"))
        if nxt >= len(position):
            break
        starts.append(nxt)
    group = np.repeat(np.arange(len(starts)), np.diff(starts + [len(position)]))
    pairs = np.unique(group * len(detections) + source)  # each (candidate, detector) once
    votes = np.bincount(pairs // len(detections), minlength=len(starts))
    first = np.full(len(starts), len(position))
    np.minimum.at(first, group[source == 0], np.flatnonzero(source == 0))  # the first detector's earliest mark
    beats = np.where(first < len(position), position[np.minimum(first, len(position) - 1)], 0)
    for g in np.flatnonzero(first == len(position)):  # found by others only: the median of their marks
        beats[g] = int(np.median(position[group == g]))
    return beats.astype(np.int64), votes


def fuse_detections(signal: np.ndarray, fs: float, detections: list[np.ndarray]) -> np.ndarray:
    """R peaks agreed by the detectors (the first one's positions preferred), with gaps searched back."""
    if not any(len(d) for d in detections):
        return np.empty(0, dtype=np.int64)
    beats, votes = vote(detections, int(round(MATCH_S * fs)))
    accepted, single = beats[votes >= 2], beats[votes == 1]
    if len(accepted) < 3:
        return accepted
    band = qrs_band(signal, fs)
    energy = qrs_energy(band, fs, accepted)
    typical = moving_median(energy, NEIGHBOURS)
    accepted, typical = accepted[energy >= DROP_ENERGY * typical], typical[energy >= DROP_ENERGY * typical]
    if len(accepted) < 3 or not len(single):
        return accepted
    rr = np.diff(accepted)
    local_rr = moving_median(rr, NEIGHBOURS - 1)
    gap = np.searchsorted(accepted, single) - 1  # the interval each single detection falls in
    inside = (gap >= 0) & (gap < len(rr))
    single, gap = single[inside], gap[inside]
    room = ((rr[gap] > GAP * local_rr[gap]) & (single - accepted[gap] > SPACING * local_rr[gap])
            & (accepted[gap + 1] - single > SPACING * local_rr[gap]))
    single, gap = single[room], gap[room]
    strong = qrs_energy(band, fs, single) >= SEARCH_ENERGY * typical[gap]
    return np.unique(np.concatenate([accepted, single[strong]]))
