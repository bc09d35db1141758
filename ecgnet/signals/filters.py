"""Butterworth filters, zero-phase filtering and moving windows in NumPy, equal to SciPy's within rounding.

The record path filters a recording a few times (each R-peak detector's band-pass, the QRS band of the fusion);
``scipy.signal`` costs about a second to import, longer than the filtering itself. These are the same
computations: ``butter_sos`` is ``scipy.signal.butter(..., output="sos")`` (analog prototype, pre-warped
bilinear transform, poles paired with their nearest zeros, the poles nearest the unit circle last);
``sosfilt`` runs the cascade block by block (``BLOCK`` samples: their zero-state response as one matrix product
with the impulse response, plus the response to the block's start state; the start states of a group of ``GROUP``
blocks from the group's input and its own start state, carried from group to group), which is the sample-by-sample
recursion of ``scipy.signal.sosfilt`` re-associated; ``sosfiltfilt`` and ``fir_filtfilt`` pad
and initialise as ``scipy.signal.sosfiltfilt`` and ``filtfilt(method="pad")`` do. tests/test_filters.py compares
each with SciPy on real records.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

BLOCK = 64   # samples per block of sosfilt: its zero-state response one (n / BLOCK, BLOCK) x (BLOCK, BLOCK) product
GROUP = 8    # blocks per step of the state recursion: their start states from the group's input in one product


def butter_sos(order: int, cutoff: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    """Second-order sections (n, 6) of a digital Butterworth filter: 'lowpass', 'highpass' (one cutoff, Hz) or
    'bandpass' (two), as ``scipy.signal.butter(order, cutoff, btype, output="sos", fs=fs)``."""
    edges = np.atleast_1d(np.asarray(cutoff, float))
    if not ((edges > 0) & (edges < fs / 2)).all():
        raise ValueError(f"filter edges {cutoff} Hz must lie between 0 and half the sampling rate ({fs / 2:g} Hz)")
    poles = -np.exp(1j * np.pi * np.arange(-order + 1, order, 2) / (2 * order))  # analog prototype, cutoff 1 rad/s
    warped = 4.0 * np.tan(np.pi * edges / fs)  # pre-warped, for the bilinear transform at rate 2
    if btype == "lowpass":
        poles, zeros, gain = poles * warped[0], np.zeros(0), warped[0] ** order
    elif btype == "highpass":
        poles, zeros, gain = warped[0] / poles, np.zeros(order), np.real(1 / np.prod(-poles))
    elif btype == "bandpass":
        bw, wo = warped[1] - warped[0], np.sqrt(warped[0] * warped[1])
        half = poles * bw / 2
        root = np.sqrt(half ** 2 - wo ** 2)
        poles, zeros, gain = np.concatenate([half + root, half - root]), np.zeros(order), bw ** order
    else:
        raise ValueError(f"unknown filter type {btype!r}")
    digital_zeros = np.concatenate([(4.0 + zeros) / (4.0 - zeros), -np.ones(len(poles) - len(zeros))])
    digital_poles = (4.0 + poles) / (4.0 - poles)
    gain = gain * np.real(np.prod(4.0 - zeros) / np.prod(4.0 - poles))
    return _pair_sections(digital_zeros, digital_poles, gain)


def _pair_sections(zeros: np.ndarray, poles: np.ndarray, gain: float) -> np.ndarray:
    """SciPy's 'nearest' pairing (``zpk2sos``) for real zeros: the pole nearest the unit circle (with its conjugate)
    takes the zeros nearest to it, section by section; those sections come last; the gain goes to the first."""
    if len(poles) % 2:
        poles, zeros = np.append(poles, 0.0), np.append(zeros, 0.0)
    zeros, poles = list(zeros.real), list(poles)
    sections = []
    while poles:
        p1 = poles.pop(int(np.argmin(np.abs(1 - np.abs(poles)))))
        if abs(p1.imag) > 0:
            poles.pop(int(np.argmin(np.abs(np.array(poles) - np.conj(p1)))))
            pair = (p1, np.conj(p1))
        else:  # a real pole takes the next real pole nearest the unit circle
            real = [i for i, p in enumerate(poles) if p.imag == 0]
            pair = (p1, poles.pop(real[int(np.argmin([abs(1 - abs(poles[i])) for i in real]))]))
        z1 = zeros.pop(int(np.argmin(np.abs(np.array(zeros) - p1))))
        z2 = zeros.pop(int(np.argmin(np.abs(np.array(zeros) - p1))))
        sections.append(np.concatenate([np.real(np.poly([z1, z2])), np.real(np.poly(pair))]))
    sos = np.array(sections[::-1])
    sos[0, :3] *= gain
    return sos


@lru_cache(maxsize=32)
def _block_matrices(sos_bytes: bytes, n_sections: int, block: int, group: int) -> dict[str, np.ndarray]:
    """The linear maps of ``group`` blocks of ``block`` samples of the cascade (states as rows of m = 2 per section):

    ``toeplitz`` (block, block), a block's zero-state response; ``from_state`` (m, block), its response to its start
    state; ``from_input`` (block * group, (group + 1) * m) and ``carried`` (m, (group + 1) * m), the state at the start
    of each block of the group and at its end (the next group's start) from the group's input and its start state.
    Found by running the recursion itself on an impulse and on each unit start state at once (its rounding, not a
    power's); kept for the filters a recording is filtered with again."""
    sos = np.frombuffer(sos_bytes).reshape(n_sections, 6)
    m, length = 2 * len(sos), block * group
    state = np.vstack([np.zeros(m), np.eye(m)])  # run 0: an impulse from rest; run 1 + i: unit state i, no input
    value_in = np.zeros((length, m + 1))
    value_in[0, 0] = 1.0
    out, pushed = np.empty((length, m + 1)), np.empty((length + 1, m))
    carried = np.zeros((group + 1, m, m))
    carried[0] = np.eye(m)
    for n in range(length):
        value = value_in[n]
        for s, (b0, b1, b2, _, a1, a2) in enumerate(sos):
            y = b0 * value + state[:, 2 * s]
            state[:, 2 * s], state[:, 2 * s + 1] = b1 * value - a1 * y + state[:, 2 * s + 1], b2 * value - a2 * y
            value = y
        out[n], pushed[n + 1] = value, state[0]
        if (n + 1) % block == 0:
            carried[(n + 1) // block] = state[1:]
    h = out[:block, 0]
    index = np.arange(block)
    toeplitz = np.where(index[None, :] >= index[:, None], h[np.abs(index[None, :] - index[:, None])], 0.0)
    # the state after j blocks from input sample k < j * block is the impulse's state j * block - k samples on
    lag = np.arange(group + 1)[None, :] * block - np.arange(length)[:, None]
    from_input = np.where((lag > 0)[:, :, None], pushed[np.clip(lag, 0, length)], 0.0).reshape(length, -1)
    return {"toeplitz": toeplitz, "from_state": out[:block, 1:].T, "from_input": from_input,
            "carried": carried.transpose(1, 0, 2).reshape(m, -1)}


def sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None) -> np.ndarray:
    """``scipy.signal.sosfilt(sos, x, zi=zi)[0]`` (or without ``zi``: from rest) of a 1-D signal."""
    sos = np.asarray(sos, float) / np.asarray(sos, float)[:, 3:4]
    x = np.asarray(x, float)
    m, span = 2 * len(sos), BLOCK * GROUP
    maps = _block_matrices(sos.tobytes(), len(sos), BLOCK, GROUP)
    groups = np.zeros(-(-len(x) // span) * span)
    groups[:len(x)] = x
    groups = groups.reshape(-1, span)
    from_input = groups @ maps["from_input"]  # each block's start state and the group's end state, from the group's input
    pushed = list(from_input[:, GROUP * m:])
    starts = np.empty((len(groups) + 1, m))  # the state at each group's start: the one before, carried, plus its push
    starts[0] = 0.0 if zi is None else np.asarray(zi, float).reshape(-1)
    rows, carried = list(starts), np.ascontiguousarray(maps["carried"][:, GROUP * m:])  # row views written in place
    for g in range(len(groups)):
        np.dot(rows[g], carried, out=rows[g + 1])
        rows[g + 1] += pushed[g]
    block_starts = (starts[:-1] @ maps["carried"][:, :GROUP * m] + from_input[:, :GROUP * m]).reshape(-1, m)
    out = groups.reshape(-1, BLOCK) @ maps["toeplitz"]
    out += block_starts @ maps["from_state"]
    return out.reshape(-1)[:len(x)]


def sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """The cascade's state (n, 2) in steady state for a unit step, as ``scipy.signal.sosfilt_zi``."""
    sos = np.asarray(sos, float) / np.asarray(sos, float)[:, 3:4]
    zi, scale = np.empty((len(sos), 2)), 1.0
    for s, (b0, b1, b2, _, a1, a2) in enumerate(sos):
        companion_t = np.array([[-a1, 1.0], [-a2, 0.0]])
        zi[s] = scale * np.linalg.solve(np.eye(2) - companion_t, np.array([b1 - a1 * b0, b2 - a2 * b0]))
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2)
    return zi


def odd_extension(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` with ``n`` samples mirrored about each end point (SciPy's 'odd' padding)."""
    return np.concatenate([2 * x[0] - x[n:0:-1], x, 2 * x[-1] - x[-2:-(n + 2):-1]])


def sosfiltfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-phase filtering forward and back, as ``scipy.signal.sosfiltfilt(sos, x)`` (odd padding, default length)."""
    sos, x = np.asarray(sos, float), np.asarray(x, float)
    taps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    edge = 3 * taps
    if len(x) <= edge:
        raise ValueError(f"the signal ({len(x)} samples) must be longer than the filter's padding ({edge})")
    zi = sosfilt_zi(sos)
    ext = odd_extension(x, edge)
    forward = sosfilt(sos, ext, zi * ext[0])
    backward = sosfilt(sos, forward[::-1], zi * forward[-1])
    return backward[::-1][edge:-edge]


def fir_filtfilt(taps: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-phase FIR filtering, as ``scipy.signal.filtfilt(taps, [1], x, method="pad")``."""
    taps, x = np.asarray(taps, float), np.asarray(x, float)
    edge = 3 * len(taps)
    if len(x) <= edge:
        raise ValueError(f"the signal ({len(x)} samples) must be longer than the filter's padding ({edge})")
    zi = np.cumsum(taps[::-1])[::-1][1:]  # steady state of a unit step: the taps not yet reached

    def once(signal: np.ndarray, start: float) -> np.ndarray:
        y = np.convolve(signal, taps)[:len(signal)]
        y[:len(zi)] += zi * start
        return y

    ext = odd_extension(x, edge)
    forward = once(ext, ext[0])
    return once(forward[::-1], forward[-1])[::-1][edge:-edge]


def moving_average(x: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``size`` samples around each one, ends repeated, as ``scipy.ndimage.uniform_filter1d(x, size,
    mode="nearest")`` (an even window reaches one further back than ahead)."""
    x = np.asarray(x, float)
    before = size // 2
    padded = np.concatenate([np.full(before, x[0]), x, np.full(size - before - 1, x[-1])])
    sums = np.cumsum(np.concatenate([[0.0], padded]))
    return (sums[size:] - sums[:-size]) / size


def moving_median(x: np.ndarray, size: int) -> np.ndarray:
    """Median of ``size`` values around each one, ends repeated, as ``scipy.ndimage.median_filter(x, size,
    mode="nearest")`` (an even window: the upper of the two middle values, reaching one further back)."""
    x = np.asarray(x)
    before = size // 2
    padded = np.concatenate([np.full(before, x[0]), x, np.full(size - before - 1, x[-1])])
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(padded, size), axis=1)
    return windows[:, size // 2]


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down)``: upsample by ``up``, low-pass with a Kaiser-windowed sinc (beta 5,
    10 zero crossings each side of the slower rate), downsample by ``down``; each output sample is the dot product of
    the input around it with one phase of the filter, so only the outputs kept are computed."""
    x = np.asarray(x, float)
    factor = np.gcd(up, down)
    up, down = up // factor, down // factor
    if up == down == 1:
        return x.copy()
    n_out = -(-len(x) * up // down)
    rate = max(up, down)
    half = 10 * rate
    taps = lowpass_taps(2 * half + 1, 1.0 / rate) * up
    pre = down - half % down
    shift = (half + pre) // down  # outputs the filter's delay puts before the first kept one
    taps = np.concatenate([np.zeros(pre), taps])
    # Output k is sum_j x[j] * taps[(k + shift) * down - j * up]: one phase of the taps (those up apart) against the
    # input up to its newest sample. The phase repeats every `up` outputs, whose newest samples lie `down` apart.
    width = -(-len(taps) // up)
    padded = np.concatenate([np.zeros(width - 1), x, np.zeros(down * up + width)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)  # row i: x[i - width + 1 .. i]
    out = np.empty(n_out)
    for k in range(min(up, n_out)):
        n = (k + shift) * down
        phase = np.zeros(width)
        phase[:len(taps[n % up::up])] = taps[n % up::up]
        out[k::up] = windows[n // up::down][:len(out[k::up])] @ phase[::-1]
    return out


def lowpass_taps(n: int, cutoff: float) -> np.ndarray:
    """``scipy.signal.firwin(n, cutoff)`` with the window ('kaiser', 5.0): a windowed sinc with unit gain at DC
    (``cutoff`` relative to the Nyquist rate)."""
    m = np.arange(n) - (n - 1) / 2
    taps = cutoff * np.sinc(cutoff * m) * np.kaiser(n, 5.0)
    return taps / taps.sum()
