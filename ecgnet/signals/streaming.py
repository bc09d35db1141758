"""Streaming: label beats while the signal is still coming in, with bounded memory.

``BeatStream`` keeps the last ``BUFFER_S`` seconds of signal. Every ``HOP_S`` seconds of
new samples it runs the detector over the buffer and accepts the R peaks that lie between
``WARMUP_S`` after the buffer's start and ``MARGIN_S`` before its end (where a detector has
context on both sides). A beat is cut as soon as the samples it needs have arrived: the
paper's recipe (up to 1.2 x the median R-R after R, at 125 Hz, scaled to [0, 1]) with the
median taken over the past ``WINDOW_SECONDS`` only, so the cut is causal; for rhythm
models the beat also waits for the next R peak (its post-R-R interval). The latency is
about MARGIN_S + HOP_S + 1.2 R-R after the R peak (plus one R-R for rhythm models), and
is measured in tests/test_streaming.py. Memory is the buffer plus the last few peaks.

The record's mean R-R (rhythm feature ``record_rr``) is the running mean of the plausible
intervals so far, where the offline path uses the whole record's: early beats of a
stream see a less settled average. Likewise, for template models each beat's template
(``ecgnet.signals.template``) is the median of the last ``STREAM_TEMPLATE_BEATS`` beats cut,
itself included, where the offline path takes the whole record's median beat.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy as np

from ..constants import BEAT_LENGTH, SAMPLE_RATE, WINDOW_SECONDS
from ..errors import EcgnetError
from .context import BeatContext
from .fibrillation import TrailingIrregularity
from .preprocess import BEAT_SPAN, detect_r_peaks, minmax, resample
from .rhythm import LOCAL_BEATS, PLAUSIBLE_RR_S
from .template import STREAM_TEMPLATE_BEATS, median_beat

BUFFER_S = 20.0     # signal kept, seconds
HOP_S = 1.0         # detection runs after each HOP_S of new samples
WARMUP_S = 2.0      # peaks this close to the buffer's start are not trusted (detector still adapting)
MARGIN_S = 0.5      # nor this close to its end (the QRS may be incomplete)
REFRACTORY_S = 0.2  # a peak this close to an accepted one is the same beat
CONTEXT_S = 0.5     # samples around a cut beat resampled with it (the resampling filter's reach)


@dataclass
class StreamBeat:
    """One beat, cut from the stream: where, its 187 samples at 125 Hz, its rhythm features (s), its template, and
    whether the rhythm up to it is irregular as in atrial fibrillation (``fibrillation.TrailingIrregularity``)."""
    sample: int                 # R position in samples of the stream (at its own rate)
    beat: np.ndarray            # (187,) float32
    rhythm: np.ndarray          # (4,) pre_rr, post_rr, local_rr, record_rr
    cut_at: int                 # stream samples received when the beat was cut (for latency)
    template: np.ndarray | None = None  # (187,) median of the recent beats, when the stream keeps templates
    irregular: bool = False


@dataclass
class BeatStream:
    """Push raw samples in, take cut beats out; see the module docstring for the recipe."""
    fs: float
    detector: str
    before_r_s: float = 0.0
    wait_for_next_beat: bool = False
    keep_templates: bool = False                         # give each beat its template (template models)
    buffer: np.ndarray = field(default_factory=lambda: np.empty(0))
    start: int = 0                                       # stream index of buffer[0]
    received: int = 0
    peaks: list[int] = field(default_factory=list)       # accepted R peaks not yet cut, and the last few cut ones
    next_cut: int = 0                                    # index in ``peaks`` of the first peak not yet cut
    rr_sum: float = 0.0
    rr_count: int = 0
    last_detection: int = 0
    ended: bool = False
    recent_beats: deque = field(default_factory=lambda: deque(maxlen=STREAM_TEMPLATE_BEATS))
    irregularity: TrailingIrregularity = field(default_factory=TrailingIrregularity)

    def push(self, samples: np.ndarray) -> list[StreamBeat]:
        """Add samples (any count, finite floats); return the beats that became complete."""
        samples = np.asarray(samples, dtype=np.float64).ravel()
        bad = ~np.isfinite(samples)
        if bad.any():  # a dropped sample becomes the last good one, as a gap in the recording would
            samples = samples.copy()
            last = self.buffer[-1] if len(self.buffer) else 0.0
            for k in np.flatnonzero(bad):
                samples[k] = samples[k - 1] if k else last
        self.buffer = np.concatenate([self.buffer, samples])
        self.received += len(samples)
        out: list[StreamBeat] = []
        if self.received - self.last_detection >= HOP_S * self.fs:
            self.last_detection = self.received
            self._accept_peaks()
            out = self._cut_ready()
            self._trim()
        return out

    def finish(self) -> list[StreamBeat]:
        """The stream has ended: detect up to its last sample and cut the remaining beats with what arrived."""
        self.ended = True
        self._accept_peaks()
        return self._cut_ready()

    def _accept_peaks(self) -> None:
        if len(self.buffer) < 2 * WARMUP_S * self.fs or np.ptp(self.buffer) == 0:
            return
        found = detect_r_peaks(self.buffer, self.fs, self.detector) + self.start
        lo = self.start + (WARMUP_S * self.fs if self.start > 0 else 0)
        hi = self.received - (0 if self.ended else MARGIN_S * self.fs)
        for p in found[(found >= lo) & (found <= hi)]:
            if not self.peaks or p - self.peaks[-1] >= REFRACTORY_S * self.fs:
                if self.peaks:
                    rr = (p - self.peaks[-1]) / self.fs
                    if PLAUSIBLE_RR_S[0] <= rr <= PLAUSIBLE_RR_S[1]:
                        self.rr_sum, self.rr_count = self.rr_sum + rr, self.rr_count + 1
                self.peaks.append(int(p))

    def _cut_ready(self) -> list[StreamBeat]:
        out = []
        while self.next_cut < len(self.peaks):
            i = self.next_cut
            beat = self._cut(i)
            if beat is None:
                break
            if beat is not False:
                out.append(beat)
            self.next_cut += 1
        return out

    def _cut(self, i: int) -> StreamBeat | None | bool:
        """Beat i, None if it must wait for more samples, False if the recipe cannot cut it."""
        r, fs = self.peaks[i], self.fs
        window = [p for p in self.peaks[:i + 1] if p > r - WINDOW_SECONDS * fs]
        if len(window) < 2:
            return False
        period = float(np.median(np.diff(window))) / fs                 # seconds, past window only
        after_s = BEAT_SPAN * period
        has_next = i + 1 < len(self.peaks)
        if not self.ended and (self.received < r + (after_s + CONTEXT_S) * fs or (self.wait_for_next_beat and not has_next)):
            return None
        a = int(r - (self.before_r_s + CONTEXT_S) * fs) - self.start
        if a < 0:
            return False
        segment = resample(self.buffer[a:int(r + (after_s + CONTEXT_S) * fs) - self.start], fs)
        before = int(round(self.before_r_s * SAMPLE_RATE))
        at = int(round(CONTEXT_S * SAMPLE_RATE)) + before          # R's index in the resampled segment
        length = min(BEAT_LENGTH, before + int(round(BEAT_SPAN * period * SAMPLE_RATE)))
        beat = np.zeros(BEAT_LENGTH, dtype=np.float32)
        piece = segment[at - before:at - before + length]
        if len(piece) < 2:
            return False
        beat[:len(piece)] = minmax(piece)
        template = None
        if self.keep_templates:
            self.recent_beats.append(beat)
            template = median_beat(np.stack(self.recent_beats))
        rhythm = self._rhythm(i)
        return StreamBeat(r, beat, rhythm, self.received, template, self.irregularity.update(rhythm[0]))

    def _rhythm(self, i: int) -> np.ndarray:
        p = np.asarray(self.peaks, dtype=np.float64) / self.fs
        pre = p[i] - p[i - 1]
        post = p[i + 1] - p[i] if i + 1 < len(p) else pre
        local = np.diff(p[max(0, i - LOCAL_BEATS):i + 1]).mean()
        record = self.rr_sum / self.rr_count if self.rr_count else pre
        return np.array([pre, post, local, record], dtype=np.float32)

    def _trim(self) -> None:
        """Keep BUFFER_S seconds of signal and only the peaks a later cut can still need."""
        drop = len(self.buffer) - int(BUFFER_S * self.fs)
        if drop > 0:
            self.buffer = self.buffer[drop:]
            self.start += drop
        if not self.next_cut:
            return
        ref = self.peaks[min(self.next_cut, len(self.peaks) - 1)]
        recent = next(j for j, p in enumerate(self.peaks) if p > ref - WINDOW_SECONDS * self.fs)
        keep_from = min(max(0, self.next_cut - LOCAL_BEATS - 1), recent)
        if keep_from:
            del self.peaks[:keep_from]
            self.next_cut -= keep_from


STREAM_FORMATS = ("text", "f32")


def stream_context(beats: list[StreamBeat]) -> BeatContext:
    """Beats cut from a stream in context: each with its rhythm, its own template and its trailing irregularity."""
    templates = [b.template for b in beats]
    return BeatContext.of_beats(np.stack([b.beat for b in beats]), np.stack([b.rhythm for b in beats]),
                                None if any(t is None for t in templates) else np.stack(templates),
                                np.array([b.irregular for b in beats]))


def sample_chunks(stream: BinaryIO, fmt: str = "text", follow: bool = False, chunk_bytes: int = 1 << 14,
                  poll_s: float = 0.2) -> Iterator[np.ndarray]:
    """Samples from a byte stream as they arrive: one number per line ('text') or little-endian float32 ('f32').

    With ``follow``, end of file means "wait for more" (a file being appended), until interrupted.
    """
    pending, line = b"", 0
    read = getattr(stream, "read1", stream.read)
    while True:
        data = read(chunk_bytes)
        if not data:
            if follow:
                time.sleep(poll_s)
                continue
            break
        pending += data
        if fmt == "f32":
            n = len(pending) // 4 * 4
            values, pending = np.frombuffer(pending[:n], dtype="<f4").astype(np.float64), pending[n:]
        else:
            *lines, pending = pending.split(b"\n")
            values, line = _parse_lines(lines, line)
        if len(values):
            yield values
    if fmt == "f32" and pending:
        raise EcgnetError(f"the stream ended inside a float32 value ({len(pending)} stray bytes); send whole 4-byte samples")
    if fmt == "text" and pending.strip():
        yield _parse_lines([pending], line)[0]


def _parse_lines(lines: list[bytes], line: int) -> tuple[np.ndarray, int]:
    values = []
    for text in lines:
        line += 1
        text = text.strip()
        if not text:
            continue
        try:
            values.append(float(text.split(b",")[0]))
        except ValueError:
            raise EcgnetError(f"stream line {line}: {text[:40]!r} is not a number; send one sample per line "
                              "(or binary float32 with --format f32)") from None
    return np.asarray(values, dtype=np.float64), line
