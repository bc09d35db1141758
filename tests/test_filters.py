"""``ecgnet.signals.filters``: the record path's filters in NumPy, equal to SciPy's on real records."""
import numpy as np
import pytest
import scipy.ndimage as ndimage
import scipy.signal as ss
from helpers import FIXTURES

from ecgnet.signals import filters
from ecgnet.signals.records import read_wfdb

DESIGNS = [  # the detectors' and the fusion's filters, at MIT-BIH's rate and others
    (2, (5.0, 30.0), "bandpass", 360), (5, 0.5, "highpass", 360), (3, (0.01, 10.0), "bandpass", 360),
    (2, (5.0, 20.0), "bandpass", 128), (3, 1.0, "highpass", 250), (4, 40.0, "lowpass", 500), (5, 0.5, "highpass", 1000),
]


@pytest.fixture(scope="module")
def signal():
    return np.asarray(read_wfdb(FIXTURES / "mitdb" / "208").signal, np.float64)


@pytest.mark.parametrize("order, cutoff, btype, fs", DESIGNS)
def test_butterworth_sections_and_filtering_equal_scipy(signal, order, cutoff, btype, fs):
    sos = filters.butter_sos(order, cutoff, btype, fs)
    reference = ss.butter(order, cutoff, btype, output="sos", fs=fs)
    np.testing.assert_allclose(sos, reference, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(filters.sosfilt_zi(sos), ss.sosfilt_zi(reference), rtol=1e-12, atol=1e-15)
    scale = np.abs(signal).max()
    np.testing.assert_allclose(filters.sosfilt(sos, signal), ss.sosfilt(reference, signal), rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(filters.sosfiltfilt(sos, signal), ss.sosfiltfilt(reference, signal), rtol=0, atol=1e-8 * scale)
    zi = ss.sosfilt_zi(reference) * signal[0]
    np.testing.assert_allclose(filters.sosfilt(sos, signal[:1000], zi), ss.sosfilt(reference, signal[:1000], zi=zi)[0],
                               rtol=0, atol=1e-8 * scale)


def test_short_signals_and_fir_smoothing_equal_scipy(signal):
    sos = filters.butter_sos(2, (5.0, 30.0), "bandpass", 360)
    for n in (31, 100, 257):  # shorter than a block, and just over one
        np.testing.assert_allclose(filters.sosfiltfilt(sos, signal[:n]), ss.sosfiltfilt(sos, signal[:n]), atol=1e-10)
    with pytest.raises(ValueError, match="longer than the filter's padding"):
        filters.sosfiltfilt(sos, signal[:15])
    for width in (7, 5, 2):  # NeuroKit's power-line smoothing: one 50 Hz period of samples
        taps = np.ones(width) / width
        np.testing.assert_allclose(filters.fir_filtfilt(taps, signal), ss.filtfilt(np.ones(width), [width], signal, method="pad"),
                                   atol=1e-12)


@pytest.mark.parametrize("size", [1, 16, 17, 36, 37])
def test_moving_windows_equal_scipy_ndimage(signal, size):
    np.testing.assert_allclose(filters.moving_average(signal, size), ndimage.uniform_filter1d(signal, size, mode="nearest"),
                               atol=1e-12)
    values = np.abs(signal[:2000:7])
    np.testing.assert_array_equal(filters.moving_median(values, size), ndimage.median_filter(values, size=size, mode="nearest"))


@pytest.mark.parametrize("up, down", [(25, 72), (125, 128), (125, 250), (5, 4), (1, 8), (3, 1)])
def test_polyphase_resampling_equals_scipy(signal, up, down):
    for x in (signal, signal[:1000], signal[:37]):
        np.testing.assert_allclose(filters.resample_poly(x, up, down), ss.resample_poly(x, up, down), atol=1e-12)
    np.testing.assert_allclose(filters.lowpass_taps(1441, 1 / 72), ss.firwin(1441, 1 / 72, window=("kaiser", 5.0)), atol=1e-15)
