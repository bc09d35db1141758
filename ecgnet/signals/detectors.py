"""The fused detector's three R-peak detectors without their packages' import cost, equal to the libraries.

``sleepecg``, NeuroKit2's ``neurokit`` and its ``kalidas2017`` (``ecgnet.signals.fusion``) are what
``predict --record`` runs on every recording, but importing sleepecg and NeuroKit2 (and the ``scipy.signal``
they load) takes about two seconds, longer than labelling a 30-minute recording. Here each is the same
computation: NeuroKit2's cleaning and both of its detectors restated in NumPy (its find_peaks and prominence
rules, its thresholds, its loops), and sleepecg's compiled core (``_heartbeat_detection``: the squared moving
integration and the Pan-Tompkins thresholding in C) loaded from its installed package without running the
package's ``__init__``; the filters are ``ecgnet.signals.filters``. tests/test_detectors.py checks every one
against its library on real records; ``detect_r_peaks`` falls back to the libraries for the other methods.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np

from .filters import butter_sos, fir_filtfilt, moving_average, sosfilt, sosfiltfilt

NUMPY_DETECTORS = ("sleepecg", "nk-neurokit", "nk-kalidas2017")
LONG_SEGMENT = 128  # samples: a QRS segment longer than this (noise) is searched for its peak on its own


def qrs_marks(signal: np.ndarray, fs: float, methods: tuple[str, ...]) -> list[np.ndarray]:
    """QRS marks of each of ``methods`` (of ``NUMPY_DETECTORS``) on a raw single-lead signal at ``fs``; NeuroKit2's
    cleaning, which both of its detectors start from, is done once."""
    cleaned = neurokit_clean(signal, fs) if any(m.startswith("nk-") for m in methods) else None
    detect = {"sleepecg": lambda: sleepecg_marks(signal, fs), "nk-neurokit": lambda: neurokit_marks(cleaned, fs),
              "nk-kalidas2017": lambda: kalidas_marks(cleaned, fs)}
    return [detect[m]() for m in methods]


@cache
def _sleepecg_core() -> ModuleType | None:
    """sleepecg's compiled extension, loaded by itself; None when the installed package has none (then the package)."""
    spec = importlib.util.find_spec("sleepecg")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for path in Path(spec.submodule_search_locations[0]).glob("_heartbeat_detection*"):
        if path.suffix in (".so", ".pyd"):
            loader = importlib.machinery.ExtensionFileLoader("sleepecg._heartbeat_detection", str(path))
            module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(loader.name, path, loader=loader))
            loader.exec_module(module)
            return module
    return None


def sleepecg_marks(signal: np.ndarray, fs: float) -> np.ndarray:
    """``sleepecg.detect_heartbeats(signal, fs)``: 5-30 Hz band-pass, five-point derivative, squared moving integration
    over 150 ms and sleepecg's Pan-Tompkins thresholding, from the first sample that differs from the first."""
    core = _sleepecg_core()
    if core is None:
        from sleepecg import detect_heartbeats
        return detect_heartbeats(signal, fs)
    if len(signal) < 2:
        raise ValueError("ECG signal must have more than one sample.")
    changed = np.flatnonzero(signal != signal[0])
    if not len(changed):
        raise ValueError("ECG signal is flat. Please check your data.")
    first = 0 if signal[1] != signal[0] else int(changed[0])
    filtered = np.ascontiguousarray(sosfiltfilt(butter_sos(2, (5, 30), "bandpass", fs), signal[first:]))
    derivative = np.correlate(filtered, np.array([-1, -2, 0, 2, 1]), mode="same")
    integrated = core._squared_moving_integration(derivative, int(0.15 * fs))
    return np.flatnonzero(core._thresholding(filtered, integrated, fs)) + first


def neurokit_clean(signal: np.ndarray, fs: float) -> np.ndarray:
    """``neurokit2.ecg_clean(signal, fs, method="neurokit")``: 0.5 Hz high-pass (Butterworth, order 5, zero phase),
    then a moving average over one 50 Hz period (two samples below 100 Hz), forward and back."""
    high = sosfiltfilt(butter_sos(5, 0.5, "highpass", fs), signal)
    width = int(fs / 50) if fs >= 100 else 2
    return fir_filtfilt(np.ones(width) / width, high)


def neurokit_marks(cleaned: np.ndarray, fs: float) -> np.ndarray:
    """NeuroKit2's own detector (``ecg_peaks(method="neurokit")``): QRS complexes where the smoothed absolute gradient
    (100 ms) exceeds 1.5 times its 750 ms average; in each one not shorter than 0.4 times their mean length, its most
    prominent local maximum, kept when more than 300 ms after the last one."""
    gradient = np.abs(np.gradient(cleaned))
    smooth = moving_average(gradient, int(np.rint(0.1 * fs)))
    threshold = 1.5 * moving_average(smooth, int(np.rint(0.75 * fs)))
    min_delay = int(np.rint(fs * 0.3))
    qrs = smooth > threshold
    begins = np.flatnonzero(~qrs[:-1] & qrs[1:])
    ends = np.flatnonzero(qrs[:-1] & ~qrs[1:])
    if len(begins) == 0:
        return np.array([], dtype=np.int64)
    ends = ends[ends > begins[0]]
    n = min(len(begins), len(ends))
    min_length = np.mean(ends[:n] - begins[:n]) * 0.4
    keep = (ends[:n] - begins[:n]) >= min_length
    best = segment_peaks(cleaned, begins[:n][keep], ends[:n][keep])
    peaks, last = [], 0
    for peak in best[best >= 0].tolist():
        if peak - last > min_delay:
            peaks.append(peak)
            last = peak
    return np.array(peaks, dtype=np.int64)


def segment_peaks(x: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each segment ``x[begin:end]``, the position of its most prominent local maximum (-1 if it has none): the
    rules of ``most_prominent_maximum``, for all segments at once (a segment longer than ``LONG_SEGMENT`` alone)."""
    best = np.full(len(begins), -1, dtype=np.int64)
    long = (ends - begins) > LONG_SEGMENT
    for i in np.flatnonzero(long):  # only these segments become Python lists, not the whole recording
        peak = most_prominent_maximum(x[begins[i]:ends[i]].tolist())
        best[i] = -1 if peak is None else begins[i] + peak
    # local maxima of the whole signal (a plateau's middle), kept where the plateau and both its neighbours lie inside
    change = np.flatnonzero(np.diff(x)) + 1
    run_start, run_end = np.concatenate([[0], change]), np.concatenate([change - 1, [len(x) - 1]])
    inner = (run_start >= 1) & (run_end <= len(x) - 2)
    run_start, run_end = run_start[inner], run_end[inner]
    rising = (x[run_start - 1] < x[run_start]) & (x[run_end + 1] < x[run_end])
    run_start, run_end = run_start[rising], run_end[rising]
    segment = np.searchsorted(begins, run_start, side="right") - 1
    ok = (segment >= 0) & ~long[np.maximum(segment, 0)]
    ok &= (run_start - 1 >= begins[np.maximum(segment, 0)]) & (run_end + 1 <= ends[np.maximum(segment, 0)] - 1)
    peak, segment = (run_start[ok] + run_end[ok]) // 2, segment[ok]
    if not len(peak):
        return best
    lo, hi = begins[segment], ends[segment] - 1
    prominence = x[peak] - np.maximum(_side_minimum(x, peak, lo, -1), _side_minimum(x, peak, hi, 1))
    order = np.lexsort((peak, -prominence, segment))  # per segment: most prominent first, then the earliest
    first = order[np.unique(segment[order], return_index=True)[1]]
    best[segment[first]] = peak[first]
    return best


def _side_minimum(x: np.ndarray, peak: np.ndarray, limit: np.ndarray, step: int) -> np.ndarray:
    """For each peak, the lowest value from it towards ``limit`` (inclusive) before a higher value (``_base``)."""
    offsets = np.arange(LONG_SEGMENT + 1) * step                     # (w,): 0, 1, 2, ... away from the peak
    index = peak[:, None] + offsets[None, :]
    inside = (index >= limit[:, None]) if step < 0 else (index <= limit[:, None])
    values = x[np.clip(index, 0, len(x) - 1)]
    higher = inside & (values > x[peak][:, None])
    reach = np.where(higher.any(1), higher.argmax(1), inside.sum(1))  # samples up to the first higher one (or the limit)
    return np.where(np.arange(len(offsets))[None, :] < reach[:, None], values, np.inf).min(1)


def most_prominent_maximum(x: list[float]) -> int | None:
    """Index of the local maximum of ``x`` with the largest prominence (the first on ties), by the rules of
    ``scipy.signal.find_peaks`` (a plateau's middle, never an end sample) and ``peak_prominences``; None if none."""
    best, best_prominence, i, n = None, -np.inf, 1, len(x)
    while i < n - 1:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < n - 1 and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peak = (i + ahead - 1) // 2
                prominence = x[peak] - max(_base(x, peak, -1), _base(x, peak, 1))
                if prominence > best_prominence:
                    best, best_prominence = peak, prominence
                i = ahead
        i += 1
    return best


def _base(x: list[float], peak: int, step: int) -> float:
    """The lowest value from ``peak`` towards one end (``step`` -1 or 1) before a higher value or the end."""
    height, lowest, i = x[peak], x[peak], peak
    while 0 <= i < len(x) and x[i] <= height:
        lowest = min(lowest, x[i])
        i += step
    return lowest


def kalidas_marks(cleaned: np.ndarray, fs: float) -> np.ndarray:
    """NeuroKit2's Kalidas & Tewfik (2017) detector: the squared level-3 detail of the stationary wavelet transform
    (db3) band-passed to 0.01-10 Hz (Butterworth, order 3, forward), its peaks thresholded as Pan & Tompkins do."""
    import pywt  # PyWavelets, NeuroKit2's own dependency for this detector

    n = len(cleaned)
    padding = next((i for i in range(1000) if (n + i) % 8 == 0), -1)
    signal = np.pad(cleaned, (0, padding), "edge") if padding > 0 else cleaned
    detail = np.asarray(pywt.swt(signal, "db3", level=3)[0][1])  # the level-3 detail (the first pair pywt returns)
    squared = sosfilt(butter_sos(3, (0.01, 10), "bandpass", fs), detail * detail)[:n]
    return np.array(pan_tompkins_peaks(squared, fs), dtype=np.int64)


def strict_maxima(x: np.ndarray) -> np.ndarray:
    """Samples higher than both neighbours (``scipy.signal.find_peaks(x, plateau_size=(1, 1))``)."""
    return np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] > x[2:])) + 1


def pan_tompkins_peaks(detection: np.ndarray, fs: float) -> list[int]:
    """NeuroKit2's ``_ecg_findpeaks_peakdetect``: signal and noise levels updated peak by peak, a peak above a quarter
    of the way from noise to signal and 300 ms after the last is a beat; after a gap longer than 1.66 mean R-R the
    largest peak in it above half that threshold is taken as the missed beat."""
    min_peak_distance, min_missed_distance = int(0.3 * fs), int(0.25 * fs)
    peaks = strict_maxima(detection)
    heights = detection[peaks].tolist()
    signal_peaks: list[int] = []
    spki = npki = 0.0
    last_peak, last_index = 0, -1
    for index, (peak, value) in enumerate(zip(peaks.tolist(), heights)):
        threshold = npki + 0.25 * (spki - npki)
        if value > threshold and peak > last_peak + min_peak_distance:
            signal_peaks.append(peak)
            if len(signal_peaks) > 9:
                rr_missed = int(1.66 * ((signal_peaks[-2] - signal_peaks[-10]) // 8))
                if peak - last_peak > rr_missed:
                    missed = peaks[last_index + 1:index]
                    missed = missed[(missed > last_peak + min_missed_distance) & (missed < peak - min_missed_distance)]
                    missed = missed[detection[missed] > 0.5 * threshold]
                    if len(missed):
                        signal_peaks[-1] = int(missed[np.argmax(detection[missed])])
                        signal_peaks.append(peak)
            last_peak, last_index = peak, index
            spki = 0.125 * value + 0.875 * spki
        else:
            npki = 0.125 * value + 0.875 * npki
    return signal_peaks
