"""Labelling beat files and whole recordings with any beat classifier (PyTorch or ONNX Runtime).

Nothing here imports torch: the same code serves ``Predictor`` (ecgnet.serving.inference) and
``OnnxPredictor`` (ecgnet.serving.onnx_backend), so a deployment without PyTorch labels
recordings exactly as the training machine does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..atomic import atomic_write
from ..constants import DEFAULT_DETECTOR, ECTOPIC, UNCERTAIN
from ..data.beatfiles import read_beats_file
from ..errors import EcgnetError
from ..signals.context import BeatContext
from ..signals.records import Recording
from ..signals.rhythm import PLAUSIBLE_RR_S, RHYTHM_FEATURES


class BeatClassifier(Protocol):
    """What labelling needs of a model: its classes, how its beats were cut, and probabilities."""
    class_names: list[str]
    model_name: str
    name: str            # shown in outputs: a shipped model's name or the file it came from
    before_r_s: float
    needs_rhythm: bool

    def predict_proba(self, beats: np.ndarray | BeatContext, rhythm: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of beats in context, the irregular-rhythm rule applied (``BeatContext.answer``)."""


def check_min_confidence(min_confidence: float | None) -> None:
    if min_confidence is not None and not 0 < min_confidence < 1:
        raise EcgnetError(f"--min-confidence must lie strictly between 0 and 1 (got {min_confidence}); e.g. 0.9")


def verdicts(probs: np.ndarray, class_names: list[str], min_confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class index and name of each beat's most probable class; -1 and 'uncertain' below ``min_confidence``."""
    check_min_confidence(min_confidence)
    top = probs.argmax(1)
    names = np.asarray(class_names, dtype=object)[top]
    if min_confidence is not None:
        unsure = probs.max(1) < min_confidence
        top = np.where(unsure, -1, top)
        names[unsure] = UNCERTAIN
    return top, names


def label_beat_files(classifier: BeatClassifier, paths: list[str], min_confidence: float | None = None) -> list[dict]:
    """One row per beat of each file: verdict, probabilities, and the true label when the file has one."""
    rows = []
    for path in paths:
        beats, labels = read_beats_file(path)
        rows += beat_rows(str(path), classifier.predict_proba(beats), labels, classifier.class_names, min_confidence)
    return rows


def beat_rows(source: str, probs: np.ndarray, labels: np.ndarray | None, names: list[str],
              min_confidence: float | None = None) -> list[dict]:
    """The rows of ``label_beat_files`` for beats already classified (``probs``) from ``source``."""
    top, verdict = verdicts(probs, names, min_confidence)
    rows = []
    for i, p in enumerate(probs):
        row = {"file": source, "beat": i + 1, "class": int(top[i]), "name": str(verdict[i]), "probability": round(float(p.max()), 6),
               "probabilities": dict(zip(names, (round(float(v), 6) for v in p)))}
        if labels is not None:
            true = int(labels[i])
            row["true_class"] = true
            row["true_name"] = names[true] if true < len(names) else str(true)
        rows.append(row)
    return rows


def label_record(classifier: BeatClassifier, recording: Recording, detector: str = DEFAULT_DETECTOR,
                 min_confidence: float | None = None) -> dict:
    """Detect, cut and classify every beat of a recording.

    Returns a dict with 'table' (one row per beat: time_s, sample, class, name,
    probability, the probability of each class, the rhythm features of ``ecgnet.signals.rhythm``,
    computed from every detected beat, and whether the rhythm around the beat is irregular as
    in atrial fibrillation, where an S call becomes N: ``ecgnet.signals.fibrillation``), the 125 Hz
    beats, the checked signal and a summary (beats per class, heart rate, ectopic share, share
    of beats in irregular rhythm). Beats in 10 s
    windows with fewer than two beats cannot be cut by the recipe and are left out
    (counted in the summary as not_cut). Below ``min_confidence`` a beat is 'uncertain'.
    """
    check_min_confidence(min_confidence)
    from ..signals.preprocess import check_signal, cut_detected_beats  # the detectors: only when a recording is cut

    signal = check_signal(recording.signal, recording.fs, recording.name)
    cut, samples = cut_detected_beats(signal, recording.fs, detector, classifier.before_r_s)
    if len(samples) == 0:
        raise EcgnetError(f"{recording.name}: no beats found in lead {recording.lead} ({len(signal) / recording.fs:.0f} s); "
                          "is this an ECG? try another --lead or --detector")
    if len(cut.beats) == 0:
        raise EcgnetError(f"{recording.name}: beats were detected but none could be cut (fewer than 2 per 10 s window)")
    context, rhythm = BeatContext.of_recording(cut.beats, samples, cut.index, recording.fs)
    probs, irregular = classifier.predict_proba(context), context.irregular
    top, names = verdicts(probs, classifier.class_names, min_confidence)
    sample = samples[cut.index]
    table = {"time_s": sample / recording.fs, "sample": sample, "class": top, "name": names, "probability": probs.max(1)}
    table |= {f"p_{c}": probs[:, i] for i, c in enumerate(classifier.class_names)}
    table |= {name: rhythm[:, i] for i, name in enumerate(RHYTHM_FEATURES)} | {"irregular_rhythm": irregular.astype(int)}
    summary = record_summary(classifier, recording, detector, len(signal), samples, names, min_confidence)
    return {"table": table, "beats": cut.beats, "signal": signal,
            "summary": summary | {"irregular_rhythm_share": float(irregular.mean())}}


def record_summary(classifier: BeatClassifier, recording: Recording, detector: str, n_samples: int, samples: np.ndarray,
                   names: np.ndarray, min_confidence: float | None) -> dict:
    """Beats per class, heart rate and ectopic share of a labelled recording."""
    rr = np.diff(np.sort(samples)) / recording.fs
    rr = rr[(rr >= PLAUSIBLE_RR_S[0]) & (rr <= PLAUSIBLE_RR_S[1])]  # ignore gaps and double detections for the rate
    classes = list(classifier.class_names) + ([UNCERTAIN] if min_confidence is not None else [])
    counts = {n: int((names == n).sum()) for n in classes}
    summary = {"record": recording.name, "lead": recording.lead, "fs": recording.fs, "seconds": n_samples / recording.fs,
               "model": classifier.name, "detector": detector, "min_confidence": min_confidence,
               "detected": int(len(samples)), "classified": int(len(names)), "not_cut": int(len(samples) - len(names)),
               "per_class": counts, "mean_heart_rate_bpm": float(60 / rr.mean()) if len(rr) else float("nan")}
    if set(ECTOPIC) <= set(classifier.class_names):
        summary["ectopic_share"] = sum(counts[c] for c in ECTOPIC) / len(names)
    return summary


def plot_strip(result: dict, recording: Recording, path: str | Path, start: float = 0.0, seconds: float = 15.0) -> None:
    """PNG of an ECG strip with every classified beat marked and labelled."""
    from .strip import save_strip, strip_image

    fs = recording.fs
    lo, hi = int(start * fs), int(min(len(result["signal"]), (start + seconds) * fs))
    if hi <= lo:
        raise EcgnetError(f"--start {start} is past the end of {recording.name} ({len(result['signal']) / fs:.0f} s)")
    t = result["table"]
    title = f"{recording.name}: {start:.0f}-{start + seconds:.0f} s, beats labelled by ecgnet ({result['summary']['model']})"
    with atomic_write(path) as f:
        save_strip(strip_image(result["signal"], fs, t["sample"], t["name"], t["probability"], lo, hi, recording.lead, title), f)


def write_beat_table(result: dict, path: str | Path) -> None:
    """The per-beat CSV of ``label_record``: time, sample, class, name, probabilities, rhythm features (s), irregular rhythm (0/1)."""
    t = result["table"]
    formats = {"time_s": "%.3f", "sample": "%d", "class": "%d", "name": "%s", "irregular_rhythm": "%d"}
    row = ",".join(formats.get(c, "%.4f") for c in t) + "\n"
    values = [v for cells in zip(*(np.asarray(v).tolist() for v in t.values())) for v in cells]
    with atomic_write(path, "w") as f:
        f.write(",".join(t) + "\n" + row * (len(values) // max(1, len(t))) % tuple(values))  # every row in one format
