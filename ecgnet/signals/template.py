"""Each beat beside its record's template: the median of that record's beats.

A new patient's normal beats differ from the training patients' in shape, but hardly
from the patient's own usual beat; what marks an ectopic beat is how it differs from
that. Template models (``ECGNet(template=True)``, registered as ``kachuee_rrt``) read two
channels per beat, the beat and its record's template, and look at the beat and its
difference from the template (``ECGNet.stem_input``). The template is the sample-wise
median of the record's beats, computed alike when training and evaluating (the record's
beats in the file), labelling a recording (all its beats) and streaming (the last
``STREAM_TEMPLATE_BEATS`` beats, ``ecgnet.signals.streaming``). numpy only, for the ONNX backend.
"""
from __future__ import annotations

import numpy as np

STREAM_TEMPLATE_BEATS = 500  # about 7 minutes at 70 bpm: a settled template that follows slow changes


def median_beat(beats: np.ndarray) -> np.ndarray:
    """The sample-wise median (L,) float32 of beats (n, L) or (n, 1, L): a record's template."""
    beats = np.asarray(beats, dtype=np.float32)
    return np.median(beats.reshape(len(beats), -1), axis=0).astype(np.float32)


def record_templates(beats: np.ndarray, records: np.ndarray) -> np.ndarray:
    """(n, L) templates: for each of ``beats`` (n, L), the median beat of its record in ``records`` (n,)."""
    beats, records = np.asarray(beats, dtype=np.float32), np.asarray(records)
    out = np.empty_like(beats)
    for record in np.unique(records):
        rows = np.flatnonzero(records == record)
        out[rows] = median_beat(beats[rows])
    return out


def beat_templates(beats: np.ndarray, template: np.ndarray | None = None) -> np.ndarray:
    """(n, L) float32: ``template`` ((L,) or one per beat) for each of ``beats`` (n, L); by default their median,
    for beats of one recording."""
    beats = np.asarray(beats, dtype=np.float32).reshape(len(beats), -1)
    template = median_beat(beats) if template is None else np.asarray(template, dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(template.reshape(-1, beats.shape[1]), beats.shape))


def stack_template(beats: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Model input (n, 2, L) float32 from beats (n, L) and their templates (n, L)."""
    return np.stack([np.asarray(beats, dtype=np.float32).reshape(len(beats), -1), templates], axis=1)
