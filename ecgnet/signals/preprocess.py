"""From a continuous ECG to beats: the paper's §III-A recipe.

1. resample to 125 Hz (polyphase, as scipy's resample_poly: ``ecgnet.signals.filters``);
2. split into consecutive 10 s windows;
3. beat positions (R peaks) from one of three sources: the paper's rule (in each
   window scaled to [0, 1], local maxima at zero-crossings of the first difference
   above 0.9), reference annotations, or a QRS detector of the ``wfdb`` package
   (GQRS or XQRS; bench/detection.py measures all three on mitdb);
4. T = median R-R interval of the window's beats (windows with < 2 beats are skipped);
5. each beat = [R, R + round(1.2 T)) capped at 187 samples, scaled to [0, 1] on its
   own (as every row of the published dataset is) and zero-padded to 187.

A wider window (``before_r`` > 0, not the paper's) starts that many samples before R,
so that the beat shows its P wave and QRS onset: [R - b, R + round(1.2 T)), capped at 187.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..constants import BEAT_LENGTH, DEFAULT_DETECTOR, DETECTORS, SAMPLE_RATE, WINDOW_SECONDS
from ..errors import EcgnetError
from .detectors import NUMPY_DETECTORS, qrs_marks
from .filters import resample_poly
from .fusion import FUSED_DETECTORS, fuse_detections, window_argmax

PEAK_THRESHOLD = 0.9
BEAT_SPAN = 1.2  # beats span 1.2 median R-R intervals


def resample(signal: np.ndarray, fs: float, target_fs: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling to ``target_fs`` (360 -> 125 Hz uses up 25, down 72)."""
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(signal, dtype=np.float64)
    return resample_poly(np.asarray(signal, dtype=np.float64), ratio.numerator, ratio.denominator)


def rescale_positions(samples: np.ndarray, fs: float, target_fs: int = SAMPLE_RATE) -> np.ndarray:
    """Sample indices at ``fs`` -> nearest indices at ``target_fs``."""
    return np.rint(np.asarray(samples) * (target_fs / fs)).astype(np.int64)


def minmax(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to [0, 1] (zeros for a constant ``x``)."""
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def window_starts(n: int, fs: int = SAMPLE_RATE) -> np.ndarray:
    return np.arange(0, n, WINDOW_SECONDS * fs)


def paper_r_peaks(signal: np.ndarray, fs: int = SAMPLE_RATE, threshold: float = PEAK_THRESHOLD) -> np.ndarray:
    """The paper's R-peak rule: per 10 s window scaled to [0, 1], local maxima above ``threshold``.

    Local maxima are where the first difference changes sign from positive to non-positive.
    """
    peaks = []
    width = WINDOW_SECONDS * fs
    for start in window_starts(len(signal), fs):
        window = signal[start:start + width]
        if len(window) < 3:
            continue
        scaled = minmax(window)
        d = np.diff(scaled)
        maxima = np.flatnonzero((d[:-1] > 0) & (d[1:] <= 0)) + 1
        peaks.append(start + maxima[scaled[maxima] > threshold])
    return np.concatenate(peaks) if peaks else np.empty(0, dtype=np.int64)


def detect_r_peaks(signal: np.ndarray, fs: float, method: str = DEFAULT_DETECTOR) -> np.ndarray:
    """R-peak sample indices (at ``fs``) of a raw single-lead signal.

    'sleepecg' (sleepecg's compiled detector), 'gqrs' and 'xqrs' (the ``wfdb`` package),
    the 'nk-*' methods (NeuroKit2's cleaning + detector of that name) and 'fused' (three
    fast ones voting, ``ecgnet.signals.fusion``) run at the signal's own rate; their marks are moved to the R peak (largest deviation from the
    median within ±75 ms), so that every detector cuts beats at the same point. 'paper'
    is the paper's 0.9 rule, run at 125 Hz. docs/benchmarks.md compares them.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if method == "paper":
        return np.rint(paper_r_peaks(resample(signal, fs)) * fs / SAMPLE_RATE).astype(np.int64)
    if method not in DETECTORS:
        raise EcgnetError(f"unknown beat detector {method!r}; choose one of {', '.join(DETECTORS)}")
    try:
        if method == "fused":
            return fuse_detections(signal, fs, at_r_peaks(signal, fs, *qrs_marks(signal, fs, FUSED_DETECTORS)))
        return at_r_peaks(signal, fs, _qrs_marks(signal, fs, method))[0]
    except ValueError as e:  # a band the detector filters with lies above this rate's Nyquist frequency
        raise EcgnetError(f"the {method!r} detector cannot run on a signal sampled at {fs:g} Hz ({e}); "
                          "use a recording sampled at 100 Hz or more, or another --detector") from None


def at_r_peaks(signal: np.ndarray, fs: float, *marks: np.ndarray) -> list[np.ndarray]:
    """Each detector's QRS marks moved to their R peak (the largest deviation from the median within 75 ms), sorted,
    once each."""
    deviation = np.abs(signal - np.median(signal))  # once for all detectors: a median of the whole recording
    peaks = []
    for qrs in marks:
        qrs = np.asarray(qrs, dtype=np.int64)
        qrs = qrs[(qrs >= 0) & (qrs < len(signal))]
        peaks.append(np.unique(window_argmax(deviation, qrs, int(round(0.075 * fs)))) if len(qrs) else qrs)
    return peaks


# NeuroKit2 detector name -> its cleaning method (the detectors without one of their own use NeuroKit's).
NEUROKIT_CLEANING = {"neurokit": "neurokit", "pantompkins1985": "pantompkins1985", "hamilton2002": "hamilton2002",
                     "elgendi2010": "elgendi2010", "engzeemod2012": "engzeemod2012", "kalidas2017": "neurokit",
                     "rodrigues2021": "neurokit"}


def _qrs_marks(signal: np.ndarray, fs: float, method: str) -> np.ndarray:
    """QRS marks of a detector: the fused detector's three in NumPy (``ecgnet.signals.detectors``, equal to their
    libraries), the others from their library (each imported on use: only the chosen one must be installed)."""
    if method in NUMPY_DETECTORS:
        return qrs_marks(signal, fs, (method,))[0]
    if method in ("gqrs", "xqrs"):
        from wfdb import processing
        if method == "gqrs":
            return processing.gqrs_detect(sig=signal, fs=fs)
        detector = processing.XQRS(sig=signal, fs=fs)
        detector.detect(verbose=False)
        return detector.qrs_inds
    try:
        import neurokit2 as nk
    except ImportError:
        raise EcgnetError(f"detector {method!r} needs NeuroKit2: pip install neurokit2 (or use --detector gqrs or sleepecg)") from None
    name = method.removeprefix("nk-")
    cleaned = nk.ecg_clean(signal, sampling_rate=fs, method=NEUROKIT_CLEANING[name])
    _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method=name)
    return np.asarray(info["ECG_R_Peaks"])


@dataclass
class Beats:
    """Segmented beats and where they came from."""
    beats: np.ndarray      # (n, 187) float32, each scaled to [0, 1] and zero-padded
    positions: np.ndarray  # (n,) R position of each beat, in samples at 125 Hz
    index: np.ndarray      # (n,) index of each beat in the positions given to segment_beats


def segment_beats(signal: np.ndarray, r_peaks: np.ndarray, fs: int = SAMPLE_RATE, complete_windows: bool = False,
                  before_r: int = 0) -> Beats:
    """Cut beats by the recipe from a signal at 125 Hz and sorted R positions at 125 Hz.

    With ``complete_windows`` the last window, if shorter than 10 s, is left out, as the
    published PTB data was built (bench/prepare_fidelity.py); by default every beat counts.
    ``before_r`` samples before each R peak are kept too (a beat too close to the start is left out).
    """
    r_peaks = np.asarray(r_peaks, dtype=np.int64)
    width = WINDOW_SECONDS * fs
    if complete_windows:
        r_peaks = r_peaks[r_peaks < (len(signal) // width) * width]
    window_of = r_peaks // width
    period = window_median_rr(r_peaks, window_of)
    index = np.flatnonzero(np.isfinite(period))  # windows with fewer than 2 beats have no R-R: their beats are left out
    lengths = np.minimum(BEAT_LENGTH, before_r + np.round(BEAT_SPAN * period[index]).astype(np.int64))
    start = r_peaks[index] - before_r
    # each beat's samples: its window's length from its start, cut at the signal's end; fewer than 2 and it is left out
    available = np.where(start >= 0, np.minimum(lengths, len(signal) - start), 0)
    keep = available >= 2
    index, start, available = index[keep], start[keep], available[keep]
    if not len(index):
        return Beats(np.empty((0, BEAT_LENGTH), np.float32), np.empty(0, np.int64), np.empty(0, np.int64))
    inside = np.arange(BEAT_LENGTH)[None, :] < available[:, None]
    values = np.where(inside, signal[np.minimum(start[:, None] + np.arange(BEAT_LENGTH), len(signal) - 1)], 0.0)
    low = np.where(inside, values, np.inf).min(1, keepdims=True)
    span = np.where(inside, values, -np.inf).max(1, keepdims=True) - low
    scaled = np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)  # each beat to [0, 1], as minmax
    return Beats(np.where(inside, scaled, 0.0).astype(np.float32), r_peaks[index], index)


def window_median_rr(r_peaks: np.ndarray, window_of: np.ndarray) -> np.ndarray:
    """For each of the sorted ``r_peaks``: the median R-R interval of its window's beats (``window_of`` each beat's
    window), NaN where the window holds one beat. All windows at once: the R-R intervals sorted within their window,
    the middle one (or the mean of the two middle ones) taken, as ``np.median`` does per window."""
    same = window_of[1:] == window_of[:-1]
    rr, rr_window = np.diff(r_peaks)[same], window_of[1:][same]
    windows, first, counts = np.unique(rr_window, return_index=True, return_counts=True)
    ordered = rr[np.lexsort((rr, rr_window))].astype(np.float64)
    medians = (ordered[first + (counts - 1) // 2] + ordered[first + counts // 2]) / 2
    period = np.full(len(r_peaks), np.nan)
    found = np.isin(window_of, windows)
    period[found] = medians[np.searchsorted(windows, window_of[found])]
    return period


def check_signal(signal: np.ndarray, fs: float, source: str) -> np.ndarray:
    """Validate a raw single-lead signal: long enough, finite (gaps of NaN are zeroed with a warning), not flat."""
    signal = np.asarray(signal, dtype=np.float64).ravel()
    if fs <= 0:
        raise EcgnetError(f"{source}: sampling rate {fs} Hz is not positive; pass --fs")
    if len(signal) < WINDOW_SECONDS * fs:
        raise EcgnetError(f"{source}: signal is {len(signal) / fs:.1f} s long, shorter than one {WINDOW_SECONDS} s window")
    finite = np.isfinite(signal)
    if not finite.any():
        raise EcgnetError(f"{source}: signal has no finite samples (all NaN)")
    if not finite.all():
        signal = np.where(finite, signal, np.median(signal[finite]))
    if np.ptp(signal) == 0:
        raise EcgnetError(f"{source}: signal is a flat line; no beats can be found")
    return signal


def cut_detected_beats(signal: np.ndarray, fs: float, detector: str = DEFAULT_DETECTOR,
                       before_r_s: float = 0.0) -> tuple[Beats, np.ndarray]:
    """Detect R peaks at the signal's rate and cut beats at 125 Hz by the recipe (``before_r_s`` s before R too).

    Returns the beats and every detected R position in samples at ``fs``; beat i
    sits at ``samples[cut.index[i]]`` (windows with < 2 detections yield no beats).
    """
    samples = detect_r_peaks(signal, fs, detector)
    before_r = int(round(before_r_s * SAMPLE_RATE))
    return segment_beats(resample(signal, fs), rescale_positions(samples, fs), before_r=before_r), samples
