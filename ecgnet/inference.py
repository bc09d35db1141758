"""Prediction with a trained checkpoint: classifying beats and labelling whole recordings."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, model_from_checkpoint
from .constants import BEAT_LENGTH, DEFAULT_DETECTOR, ECTOPIC
from .errors import EcgnetError
from .evaluation import predict_logits
from .fastpath import FROZEN_MIN_BEATS, freeze_for_cpu
from .plots import save_png, strip_figure
from .preprocess import check_signal, cut_detected_beats
from .records import Recording
from .rhythm import RHYTHM_FEATURES, rhythm_features, rhythm_inputs
from .runtime import select_device


class Predictor:
    """A trained model ready to classify beats (eval mode, inference only).

    On CPU, calls with 64 beats or more run through a frozen graph (``fast=True``,
    ecgnet.fastpath), built once on first use; the answers equal the eager model's to 1e-5.
    """

    def __init__(self, checkpoint: dict, device: str = "auto", batch_size: int = 1024, fast: bool = True,
                 source: str = "checkpoint") -> None:
        self.device = select_device(device)
        self.model = model_from_checkpoint(checkpoint, source).to(self.device).eval()
        self.class_names: list[str] = list(checkpoint["class_names"])
        self.task: str = checkpoint["task"]
        self.model_name: str = checkpoint.get("model_name", "kachuee")
        self.before_r_s: float = checkpoint.get("recipe", {}).get("before_r_s", 0.0)  # how its beats were cut
        self.source = source
        self.batch_size = batch_size
        self.fast = fast
        self._frozen = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", batch_size: int = 1024, fast: bool = True) -> "Predictor":
        """A predictor for a best.pt / last.pt written by ``ecgnet train``."""
        return cls(load_checkpoint(path), device, batch_size, fast, source=str(path))

    @property
    def needs_rhythm(self) -> bool:
        """Whether the model takes rhythm features (``kachuee_rr``): then beats alone are not enough."""
        return bool(self.model.rhythm_dim)

    def predict_proba(self, beats: np.ndarray, rhythm: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities (n, n_classes) for beats (n, 187) [and rhythm features (n, 4), ``ecgnet.rhythm``]."""
        x = torch.from_numpy(np.ascontiguousarray(beats, dtype=np.float32)).reshape(-1, 1, BEAT_LENGTH)
        r = None
        if self.needs_rhythm:
            if rhythm is None:
                raise EcgnetError(f"{self.source}: model '{self.model_name}' classifies beats with their rhythm, which beat files "
                                  "do not carry; label a whole recording (--record), or use a 'kachuee' checkpoint for single beats")
            r = torch.from_numpy(rhythm_inputs(np.asarray(rhythm)))
        if self.fast and self._frozen is None and self.device.type == "cpu" and len(x) >= FROZEN_MIN_BEATS:
            self._frozen = freeze_for_cpu(self.model)
        return predict_logits(self.model, x, self.batch_size, self.device, frozen=self._frozen, rhythm=r).softmax(1).numpy()

    def predict(self, beats: np.ndarray, rhythm: np.ndarray | None = None) -> np.ndarray:
        """Class names (n,) for beats (n, 187) [and rhythm features (n, 4)]."""
        return np.asarray(self.class_names)[self.predict_proba(beats, rhythm).argmax(1)]


def label_record(predictor: Predictor, recording: Recording, detector: str = DEFAULT_DETECTOR) -> dict:
    """Detect, cut and classify every beat of a recording.

    Returns a dict with 'table' (one row per beat: time_s, sample, class, name,
    probability and the rhythm features of ``ecgnet.rhythm``, computed from every
    detected beat), the 125 Hz beats, the checked signal and a summary (beats per class,
    heart rate, ectopic share). Beats in 10 s windows with fewer than two beats cannot be
    cut by the recipe and are left out (counted in the summary as not_cut).
    """
    signal = check_signal(recording.signal, recording.fs, recording.name)
    cut, samples = cut_detected_beats(signal, recording.fs, detector, predictor.before_r_s)
    if len(samples) == 0:
        raise EcgnetError(f"{recording.name}: no beats found in lead {recording.lead} ({len(signal) / recording.fs:.0f} s); "
                          "is this an ECG? try another --lead or --detector")
    if len(cut.beats) == 0:
        raise EcgnetError(f"{recording.name}: beats were detected but none could be cut (fewer than 2 per 10 s window)")
    rhythm = rhythm_features(samples, recording.fs)[cut.index]
    probs = predictor.predict_proba(cut.beats, rhythm)
    top = probs.argmax(1)
    sample = samples[cut.index]
    names = np.array(predictor.class_names)[top]
    table = {"time_s": sample / recording.fs, "sample": sample, "class": top, "name": names, "probability": probs[np.arange(len(top)), top]}
    table |= {name: rhythm[:, i] for i, name in enumerate(RHYTHM_FEATURES)}
    rr = np.diff(np.sort(samples)) / recording.fs
    rr = rr[(rr > 0.2) & (rr < 3.0)]  # ignore gaps and double detections for the rate
    counts = {n: int((names == n).sum()) for n in predictor.class_names}
    summary = {"record": recording.name, "lead": recording.lead, "fs": recording.fs, "seconds": len(signal) / recording.fs,
               "model": predictor.model_name, "detector": detector, "detected": int(len(samples)), "classified": int(len(top)),
               "not_cut": int(len(samples) - len(top)), "per_class": counts,
               "mean_heart_rate_bpm": float(60 / rr.mean()) if len(rr) else float("nan")}
    if set(ECTOPIC) <= set(predictor.class_names):
        summary["ectopic_share"] = sum(counts[c] for c in ECTOPIC) / len(top)
    return {"table": table, "beats": cut.beats, "summary": summary, "signal": signal}


def plot_strip(result: dict, recording: Recording, path: str | Path, start: float = 0.0, seconds: float = 15.0) -> None:
    """PNG of an ECG strip with every classified beat marked and labelled."""
    fs = recording.fs
    lo, hi = int(start * fs), int(min(len(result["signal"]), (start + seconds) * fs))
    if hi <= lo:
        raise EcgnetError(f"--start {start} is past the end of {recording.name} ({len(result['signal']) / fs:.0f} s)")
    t = result["table"]
    title = f"{recording.name}: {start:.0f}-{start + seconds:.0f} s, beats labelled by ecgnet"
    save_png(strip_figure(result["signal"], fs, t["sample"], t["name"], t["probability"], lo, hi, recording.lead, title), path, dpi=110)


BEAT_TABLE_COLUMNS = ("time_s", "sample", "class", "name", "probability") + RHYTHM_FEATURES


def write_beat_table(result: dict, path: str | Path) -> None:
    """The per-beat CSV of ``label_record``: time, sample, class, name, probability, rhythm features (s)."""
    t = result["table"]
    formats = ("{:.3f}", "{}", "{}", "{}", "{:.4f}") + ("{:.4f}",) * len(RHYTHM_FEATURES)
    with open(path, "w") as f:
        f.write(",".join(BEAT_TABLE_COLUMNS) + "\n")
        for row in zip(*(t[c] for c in BEAT_TABLE_COLUMNS)):
            f.write(",".join(fmt.format(v) for fmt, v in zip(formats, row)) + "\n")
