"""Prediction with a trained checkpoint: reading beat files and classifying beats."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import N_COLUMNS, read_table
from .engine import FROZEN_MIN_BEATS, freeze_for_cpu, load_checkpoint, model_from_checkpoint, predict_logits, setup_torch
from .errors import EcgnetError
from .model import BEAT_LENGTH

BEAT_FILE_SUFFIXES = (".csv", ".csv.gz", ".csv.xz", ".npy", ".mat")


def _validate_beats(array: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, 187) or (n, 188 with label) -> beats float32, labels int64 or None."""
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0:
        raise EcgnetError(f"{source}: expected beats as rows of {BEAT_LENGTH} samples (optionally + label), got an array of shape {array.shape}")
    if array.shape[1] not in (BEAT_LENGTH, N_COLUMNS):
        raise EcgnetError(f"{source}: beats have {array.shape[1]} values, expected {BEAT_LENGTH} samples at 125 Hz "
                          f"(or {N_COLUMNS} with the label last); cut and pad beats as in the Kaggle layout")
    if not np.issubdtype(array.dtype, np.number):
        raise EcgnetError(f"{source}: values are not numeric ({array.dtype})")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        raise EcgnetError(f"{source}, beat {bad[0] + 1}: contains NaN or inf; repair or drop that beat")
    labels = None
    if array.shape[1] == N_COLUMNS:
        labels = array[:, -1]
        not_label = np.flatnonzero((labels != np.round(labels)) | (labels < 0))
        if len(not_label):
            i = not_label[0]
            raise EcgnetError(f"{source}, beat {i + 1}: last column {labels[i]:g} is not a class label; "
                              f"give {BEAT_LENGTH} samples per beat, or {N_COLUMNS} with an integer label last")
        labels = labels.astype(np.int64)
        array = array[:, :-1]
    return np.ascontiguousarray(array, dtype=np.float32), labels


def load_beats_file(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Beats from .csv(.gz/.xz), .npy or Kaggle-style .mat ('data' array); rows of 187 samples, optional label last."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".csv.xz")):
        return _validate_beats(read_table(path, (BEAT_LENGTH, N_COLUMNS)), str(path))
    if not path.exists():
        raise EcgnetError(f"{path}: file not found")
    if name.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise EcgnetError(f"{path}: not a readable .npy array ({e})") from None
    elif name.endswith(".mat"):
        import scipy.io
        try:
            mat = scipy.io.loadmat(path)
        except (ValueError, OSError, TypeError) as e:
            raise EcgnetError(f"{path}: not a readable .mat file ({e})") from None
        arrays = {k: v for k, v in mat.items() if not k.startswith("__")}
        if "data" in arrays:
            array = arrays["data"]
        elif len(arrays) == 1:
            array = next(iter(arrays.values()))
        else:
            raise EcgnetError(f"{path}: .mat holds {sorted(arrays)}; expected one array, or one named 'data'")
    else:
        raise EcgnetError(f"{path}: unsupported file type; use {', '.join(BEAT_FILE_SUFFIXES)}")
    return _validate_beats(np.asarray(array), str(path))


@dataclass
class Prediction:
    label: int
    name: str
    probability: float
    probabilities: list[float]


class Predictor:
    """A trained model ready to classify beats (eval mode, inference only)."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", batch_size: int = 1024) -> None:
        ckpt = load_checkpoint(checkpoint)
        self.device = setup_torch(0, device)
        self.model = model_from_checkpoint(ckpt, str(checkpoint)).to(self.device).eval()
        self.class_names: list[str] = list(ckpt["class_names"])
        self.task: str = ckpt["task"]
        self.batch_size = batch_size
        self._frozen = None  # built on the first large CPU batch

    def probabilities(self, beats: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) for beats (n, 187)."""
        x = torch.from_numpy(np.ascontiguousarray(beats, dtype=np.float32)).reshape(-1, 1, BEAT_LENGTH)
        if self._frozen is None and self.device.type == "cpu" and len(x) >= FROZEN_MIN_BEATS:
            self._frozen = freeze_for_cpu(self.model)
        return predict_logits(self.model, x, self.batch_size, self.device, frozen=self._frozen).softmax(1).numpy()

    def predict(self, beats: np.ndarray) -> list[Prediction]:
        probs = self.probabilities(beats)
        top = probs.argmax(1)
        return [Prediction(int(k), self.class_names[k], float(p[k]), [float(v) for v in p]) for k, p in zip(top, probs)]


ECTOPIC = ("S", "V", "F")


def label_record(predictor: Predictor, recording, detector: str = "gqrs") -> dict:
    """Detect, cut and classify every beat of a recording.

    Returns a dict with 'table' (one row per beat: time_s, sample, class, name,
    probability), the 125 Hz beats, and a summary (beats per class, heart rate,
    ectopic share). Beats in 10 s windows with fewer than two beats cannot be cut
    by the recipe and are left out (counted in the summary).
    """
    from .preprocess import check_signal, cut_detected_beats

    signal = check_signal(recording.signal, recording.fs, recording.name)
    cut, samples = cut_detected_beats(signal, recording.fs, detector)
    if len(samples) == 0:
        raise EcgnetError(f"{recording.name}: no beats found in lead {recording.lead} ({len(signal) / recording.fs:.0f} s); "
                          "is this an ECG? try another --lead or --detector")
    if len(cut.beats) == 0:
        raise EcgnetError(f"{recording.name}: beats were detected but none could be cut (fewer than 2 per 10 s window)")
    probs = predictor.probabilities(cut.beats)
    top = probs.argmax(1)
    sample = samples[cut.index]
    names = np.array(predictor.class_names)[top]
    table = {"time_s": sample / recording.fs, "sample": sample, "class": top, "name": names, "probability": probs[np.arange(len(top)), top]}
    rr = np.diff(np.sort(samples)) / recording.fs
    rr = rr[(rr > 0.2) & (rr < 3.0)]  # ignore gaps and double detections for the rate
    counts = {n: int((names == n).sum()) for n in predictor.class_names}
    summary = {"record": recording.name, "lead": recording.lead, "fs": recording.fs, "seconds": len(signal) / recording.fs,
               "detected": int(len(samples)), "classified": int(len(top)), "not_cut": int(len(samples) - len(top)), "per_class": counts,
               "mean_heart_rate_bpm": float(60 / rr.mean()) if len(rr) else float("nan")}
    if predictor.task == "mitbih":
        summary["ectopic_share"] = sum(counts[c] for c in ECTOPIC) / len(top)
    return {"table": table, "beats": cut.beats, "summary": summary, "signal": signal}


def plot_strip(result: dict, recording, path, start: float = 0.0, seconds: float = 15.0) -> None:
    """PNG of an ECG strip with every classified beat marked and labelled."""
    from .metrics import plt

    fs = recording.fs
    lo, hi = int(start * fs), int(min(len(result["signal"]), (start + seconds) * fs))
    if hi <= lo:
        raise EcgnetError(f"--start {start} is past the end of {recording.name} ({len(result['signal']) / fs:.0f} s)")
    t = np.arange(lo, hi) / fs
    fig, ax = plt.subplots(figsize=(max(8, seconds * 0.9), 3.2))
    ax.plot(t, result["signal"][lo:hi], lw=0.8, color="black")
    table = result["table"]
    colours = {"N": "tab:green", "S": "tab:orange", "V": "tab:red", "F": "tab:purple", "Q": "tab:gray", "normal": "tab:green", "MI": "tab:red"}
    inside = (table["sample"] >= lo) & (table["sample"] < hi)
    top = result["signal"][lo:hi].max()
    for s, name, p in zip(table["sample"][inside], table["name"][inside], table["probability"][inside]):
        c = colours.get(name, "tab:blue")
        ax.axvline(s / fs, color=c, alpha=0.35, lw=1)
        ax.text(s / fs, top, f"{name}\n{p:.2f}", color=c, ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{recording.lead}")
    ax.set_title(f"{recording.name}: {start:.0f}-{start + seconds:.0f} s, beats labelled by ecgnet", fontsize=9)
    ax.margins(x=0, y=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_beat_table(result: dict, path) -> None:
    t = result["table"]
    with open(path, "w") as f:
        f.write("time_s,sample,class,name,probability\n")
        for row in zip(t["time_s"], t["sample"], t["class"], t["name"], t["probability"]):
            f.write(f"{row[0]:.3f},{row[1]},{row[2]},{row[3]},{row[4]:.4f}\n")
