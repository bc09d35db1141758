"""The fused detector's three detectors in NumPy (``ecgnet.signals.detectors``) equal their libraries on real records,
and the record path imports none of those libraries."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
from helpers import FIXTURES, ROOT

from ecgnet.signals import detectors
from ecgnet.signals.preprocess import resample
from ecgnet.signals.records import read_wfdb

RECORDS = ("201", "208", "209", "223")  # PVC runs, fusion beats, atrial fibrillation, noise


def library_marks(signal: np.ndarray, fs: float, method: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import neurokit2 as nk
        import sleepecg
    if method == "sleepecg":
        return sleepecg.detect_heartbeats(signal, fs)
    cleaned = nk.ecg_clean(signal, sampling_rate=fs, method="neurokit")
    return np.asarray(nk.ecg_peaks(cleaned, sampling_rate=fs, method=method.removeprefix("nk-"))[1]["ECG_R_Peaks"])


@pytest.mark.parametrize("method", detectors.NUMPY_DETECTORS)
@pytest.mark.parametrize("fs", [360, 250, 128])
def test_numpy_detectors_equal_their_libraries(method, fs):
    for name in RECORDS:
        rec = read_wfdb(FIXTURES / "mitdb" / name)
        signal = resample(rec.signal, rec.fs, fs)
        np.testing.assert_array_equal(detectors.qrs_marks(signal, fs, (method,))[0], library_marks(signal, fs, method), err_msg=name)


def test_neurokit_cleaning_equals_the_library():
    import neurokit2 as nk

    rec = read_wfdb(FIXTURES / "mitdb" / "208")
    for fs in (360, 90):  # below 100 Hz the power-line smoothing is two samples
        signal = resample(rec.signal, rec.fs, fs)
        np.testing.assert_allclose(detectors.neurokit_clean(signal, fs), nk.ecg_clean(signal, sampling_rate=fs), atol=1e-10)


def test_prominence_rules_equal_scipy():
    from scipy.signal import find_peaks

    rng = np.random.default_rng(0)
    for _ in range(300):
        x = np.round(rng.normal(size=rng.integers(3, 40)), 1)  # rounding makes plateaus
        x = x.tolist()
        peaks, props = find_peaks(x, prominence=(None, None))
        want = int(peaks[np.argmax(props["prominences"])]) if len(peaks) else None
        assert detectors.most_prominent_maximum(x) == want, x
        strict, _ = find_peaks(np.array(x), plateau_size=(1, 1))
        np.testing.assert_array_equal(detectors.strict_maxima(np.array(x)), strict)


def test_segment_peaks_at_once_equal_the_plain_rule():
    rng = np.random.default_rng(1)
    x = np.round(np.cumsum(rng.normal(size=20000)), 0)  # a rough walk with plateaus
    cuts = np.sort(rng.choice(np.arange(1, len(x)), 300, replace=False))
    begins, ends = cuts[0::2], cuts[1::2]  # segments of 1 to several hundred samples, some over LONG_SEGMENT
    assert ((ends - begins) > detectors.LONG_SEGMENT).any()
    values = x.tolist()
    want = [-1 if (p := detectors.most_prominent_maximum(values[b:e])) is None else b + p for b, e in zip(begins, ends)]
    np.testing.assert_array_equal(detectors.segment_peaks(x, begins, ends), want)


def test_flat_and_short_signals_are_refused_as_sleepecg_does():
    with pytest.raises(ValueError, match="flat"):
        detectors.sleepecg_marks(np.zeros(5000), 360)
    with pytest.raises(ValueError, match="more than one sample"):
        detectors.sleepecg_marks(np.zeros(1), 360)


def test_labelling_a_recording_imports_no_detector_library(tmp_path):
    code = ("import sys; from ecgnet.cli import main; main(['predict', '--record', sys.argv[1], '--out', sys.argv[2]]); "
            "heavy = [m for m in ('scipy.signal', 'neurokit2', 'sleepecg', 'wfdb', 'pandas', 'torch') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "mitdb" / "208"), str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout and (tmp_path / "out" / "beats.csv").exists()


def test_a_rate_too_low_for_the_detectors_bands_is_one_line_exit_2(tmp_path, capsys):
    from helpers import ecgnet

    rec = read_wfdb(FIXTURES / "mitdb" / "208")
    np.save(tmp_path / "slow.npy", resample(rec.signal, rec.fs, 50))
    code = ecgnet("predict", "--record", tmp_path / "slow.npy", "--fs", "50", "--out", tmp_path / "out")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot run on a signal sampled at 50 Hz" in err[0] and "--detector" in err[0]
