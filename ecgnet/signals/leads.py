"""Several leads of one recording, and their beats cut at shared R peaks: the input of record-level models.

R peaks are detected once, on lead II (else the first lead), and every lead is cut at those positions by the
paper's recipe (125 Hz, [R, R + 1.2 T), each beat scaled to [0, 1] and padded to 187), so beat k of every lead
is the same heartbeat. Leads sit in the slots of ``STANDARD_LEADS``; a slot without its lead stays empty.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import BEAT_LENGTH, DEFAULT_DETECTOR, RHYTHM_LEAD, STANDARD_LEADS
from ..errors import EcgnetError
from .preprocess import check_signal, detect_r_peaks, resample, rescale_positions, segment_beats
from .records import wfdb_record

MIN_BEATS = 2  # a recording with fewer detected beats cannot be judged


@dataclass
class MultiLead:
    """Every lead of a recording (physical units) and their names."""
    signals: np.ndarray  # (n_leads, n_samples)
    fs: float
    names: list[str]
    name: str


@dataclass
class LeadBeats:
    """Beats of every standard lead at shared R peaks."""
    beats: np.ndarray      # (n_beats, 12, 187) float32; zeros in a slot without its lead
    present: np.ndarray    # (12,) bool: which standard leads the recording has
    samples: np.ndarray    # (n_beats,) R positions at the recording's rate


def lead_slot(name: str) -> int | None:
    """The ``STANDARD_LEADS`` slot of a lead name (case-insensitive, 'MLII' counts as II), or None."""
    key = name.strip().lower().removeprefix("ecg").strip().removeprefix("lead").strip()
    key = "ii" if key == "mlii" else key
    lower = [n.lower() for n in STANDARD_LEADS]
    return lower.index(key) if key in lower else None


def read_leads(path: str | Path) -> MultiLead:
    """Every lead of a WFDB record."""
    record, base = wfdb_record(path)
    return MultiLead(record.p_signal.T.astype(np.float64), float(record.fs), [str(n or "") for n in record.sig_name], base.name)


def lead_beats(recording: MultiLead, detector: str = DEFAULT_DETECTOR, leads: tuple[str, ...] = STANDARD_LEADS) -> LeadBeats:
    """The beats of the recording's standard leads among ``leads``, cut at the R peaks of lead II (else the first of them)."""
    slots = {}
    for i, name in enumerate(recording.names):
        slot = lead_slot(name)
        if slot is not None and STANDARD_LEADS[slot] in leads and slot not in slots:
            slots[slot] = i
    if not slots:
        raise EcgnetError(f"{recording.name}: none of its leads ({', '.join(recording.names)}) is one of "
                          f"{', '.join(leads)}; record-level models read standard ECG leads")
    signals, refused = {}, []
    for slot, i in slots.items():
        try:  # a flat or empty lead (electrode off) is left out; the others still give a verdict
            signals[slot] = check_signal(recording.signals[i], recording.fs, f"{recording.name} lead {recording.names[i]}")
        except EcgnetError as e:
            refused.append(str(e))
    if not signals:
        raise EcgnetError(refused[0])
    rhythm_slot = STANDARD_LEADS.index(RHYTHM_LEAD)
    reference = signals.get(rhythm_slot, signals[min(signals)])
    samples = detect_r_peaks(reference, recording.fs, detector)
    r = rescale_positions(samples, recording.fs)
    order = np.argsort(r, kind="stable")
    beats = present = None
    for slot, signal in signals.items():
        cut = segment_beats(resample(signal, recording.fs), r[order])
        if beats is None:
            beats = np.zeros((len(cut.beats), len(STANDARD_LEADS), BEAT_LENGTH), np.float32)
            present, index = np.zeros(len(STANDARD_LEADS), bool), order[cut.index]
        beats[:, slot] = cut.beats
        present[slot] = True
    if len(beats) < MIN_BEATS:
        raise EcgnetError(f"{recording.name}: {len(beats)} beat(s) found in {recording.signals.shape[1] / recording.fs:.1f} s; "
                          f"a verdict needs at least {MIN_BEATS} (a clean recording of 10 s or more)")
    return LeadBeats(beats, present, np.asarray(samples)[index])
