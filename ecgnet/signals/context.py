"""A beat in context: what a model reads beside each beat, built once for every path that labels beats.

A ``BeatContext`` holds beats (n, 187) with the model inputs that come from around them: the rhythm inputs
(``rhythm.rhythm_inputs`` of each beat's R-R features), each beat's record template (``template.py``)
and whether the rhythm around the beat is irregular as in atrial fibrillation (``fibrillation.py``). It is
built from a recording's cut beats and R peaks (``of_recording``: ``predict --record``, the web page), a
prepared file (``ecgnet.data.datasets.BeatDataset.context``: ``ecgnet test``), one beat of a live stream
(``ecgnet.signals.streaming``) or beats of one recording given by a user (``of_beats``: the Python API).
``Predictor`` and ``OnnxPredictor`` take it and apply the irregular-rhythm rule themselves (``answer``),
so every path gives the same label for the same beat. numpy only, for the ONNX backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..constants import BEAT_LENGTH
from .fibrillation import gate_premature, irregular_rhythm
from .rhythm import RHYTHM_FEATURES, rhythm_features, rhythm_inputs
from .template import beat_templates, record_templates

PRE_RR = RHYTHM_FEATURES.index("pre_rr")


@dataclass(frozen=True)
class BeatContext:
    """Beats (n, 187) float32; ``rhythm``: their model rhythm inputs (n, 5) or None where unknown; ``template``:
    the record template of each beat (n, 187), one for all ((187,)), or None for the beats' median (computed when a
    template model asks, ``templates``); ``irregular``: (n,) bool, rhythm irregular as in atrial fibrillation,
    or None where unknown (then no beat is judged so)."""

    beats: np.ndarray
    rhythm: np.ndarray | None
    template: np.ndarray | None
    irregular: np.ndarray | None

    def __len__(self) -> int:
        return len(self.beats)

    @cached_property
    def templates(self) -> np.ndarray:
        """(n, 187) float32: each beat's record template."""
        return beat_templates(self.beats, self.template) if len(self.beats) else self.beats

    @classmethod
    def of_beats(cls, beats: np.ndarray, features: np.ndarray | None = None, template: np.ndarray | None = None,
                 irregular: np.ndarray | None = None) -> BeatContext:
        """Beats of one recording in time order, with their R-R ``features`` (n, 4: ``RHYTHM_FEATURES``) when known.

        The template is ``template`` ((187,) or one per beat) or the beats' median; irregularity is ``irregular``
        or, given the features, judged on their ``pre_rr`` sequence (``fibrillation.irregular_rhythm``).
        """
        beats = np.ascontiguousarray(beats, dtype=np.float32).reshape(-1, BEAT_LENGTH)
        rhythm = None
        if features is not None:
            features = np.asarray(features, dtype=np.float32).reshape(len(beats), -1)
            rhythm = rhythm_inputs(features)
            if irregular is None:
                irregular = irregular_rhythm(features[:, PRE_RR])
        return cls(beats, rhythm, template, None if irregular is None else np.asarray(irregular, bool).reshape(len(beats)))

    @classmethod
    def of_recording(cls, beats: np.ndarray, r_samples: np.ndarray, cut_index: np.ndarray, fs: float) -> tuple[BeatContext, np.ndarray]:
        """The cut ``beats`` of a recording, the ``cut_index``-th of its R peaks at ``r_samples`` (at ``fs``): rhythm
        and irregularity are measured on every R peak, the template is the cut beats' median. Also returns the
        cut beats' R-R features (n, 4), which the beat table reports."""
        every_beat = rhythm_features(r_samples, fs)
        features = every_beat[cut_index]
        return cls.of_beats(beats, features, irregular=irregular_rhythm(every_beat[:, PRE_RR])[cut_index]), features

    @classmethod
    def of_records(cls, beats: np.ndarray, rhythm: np.ndarray | None, records: np.ndarray | None,
                   irregular: np.ndarray | None) -> BeatContext:
        """Beats of several records (a prepared file) with their model ``rhythm`` inputs: each beat's template is its
        record's median beat (all the beats' median when the records are unknown)."""
        beats = np.ascontiguousarray(beats, dtype=np.float32).reshape(-1, BEAT_LENGTH)
        return cls(beats, rhythm, None if records is None or not len(beats) else record_templates(beats, records), irregular)

    def answer(self, probs: np.ndarray, class_names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Calibrated class probabilities as the beats' labels: S made N where the rhythm is irregular."""
        return probs if self.irregular is None else gate_premature(probs, self.irregular, class_names)


def as_context(beats: np.ndarray | BeatContext, features: np.ndarray | None = None, template: np.ndarray | None = None) -> BeatContext:
    """``beats`` as a ``BeatContext`` (one recording's, ``BeatContext.of_beats``); a context is returned as it is."""
    return beats if isinstance(beats, BeatContext) else BeatContext.of_beats(beats, features, template)
