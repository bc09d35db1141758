"""From uploads to library calls, for the web page: models, recordings and beat files, cached per upload.

Uploaded files are written to a temporary folder that is removed as soon as they are read;
models and results are cached (Streamlit's caches), so a page change does not redo work.
"""
from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import streamlit as st

from ..constants import DEFAULT_MODEL, DEFAULT_RECORD_MODEL, EDF_SUFFIXES, MAX_UPLOAD_MB, MODEL_FILE_SUFFIX, SIGNAL_FILE_SUFFIXES
from ..errors import EcgnetError
from ..metrics import classification_metrics
from ..models.pretrained import resolve_checkpoint, shipped_names
from ..models.registry import is_record_model
from ..serving.batch import load_classifier
from ..serving.diagnosis import RecordPredictor, read_record_leads
from ..serving.explain import attribution
from ..serving.inference import Predictor
from ..serving.labelling import beat_rows, label_record, write_beat_table
from ..serving.shipping import BUNDLED_ECG, BUNDLED_RECORD
from ..signals.records import read_recording
from ..signals.rhythm import RHYTHM_FEATURES
from ..signals.template import median_beat

AUTO_MODEL = f"default ({DEFAULT_MODEL} for beats, {DEFAULT_RECORD_MODEL} for recordings)"
EXAMPLE = (("example", b""),)


@contextmanager
def upload_folder() -> Iterator[Path]:
    """A temporary folder for uploads, removed on exit; errors name the uploaded file, not the folder."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            yield Path(tmp)
        except EcgnetError as e:
            raise EcgnetError(str(e).replace(f"{tmp}/", "")) from None


def files_of(uploads) -> tuple[tuple[str, bytes], ...]:
    """(name, bytes) of each uploaded file: hashable, so results are cached per upload."""
    return tuple((u.name, u.getvalue()) for u in uploads or [])


def model_choices(log_dir: Path = Path("log")) -> list[str]:
    """Shipped model names, then the best.pt of every run under ``log_dir``."""
    runs = sorted(str(p) for p in log_dir.glob("*/best.pt")) if log_dir.is_dir() else []
    return shipped_names() + runs


def _predictor(ckpt: dict, name: str) -> Predictor | RecordPredictor:
    """A beat model's Predictor (PyTorch: the page shows gradients), or a record model's RecordPredictor."""
    if is_record_model(ckpt.get("model_name", "")):
        return RecordPredictor(ckpt, name)
    return Predictor(ckpt, "cpu", source=name)


@st.cache_resource(max_entries=4)
def _load(spec: str, files: tuple[tuple[str, bytes], ...]) -> Predictor | RecordPredictor:
    if not files:  # as 'ecgnet predict' labels: a shipped model on ONNX Runtime when it is installed
        return load_classifier(spec)
    with upload_folder() as tmp:
        paths = [tmp / Path(name).name for name, _ in files]
        for path, (_, data) in zip(paths, files):
            path.write_bytes(data)
        main = next((p for p in paths if p.suffix in (".pt", MODEL_FILE_SUFFIX)), None)
        if main is None:
            raise EcgnetError("upload a checkpoint: a .pt file, or a .safetensors file with its .json card")
        return _predictor(resolve_checkpoint(main), main.name)


def classifier(settings: dict, for_recording: bool) -> Predictor:
    """The chosen model (an uploaded checkpoint wins), loaded once."""
    spec = settings["model"]
    if spec == AUTO_MODEL:
        spec = DEFAULT_RECORD_MODEL if for_recording else DEFAULT_MODEL
    return _load(spec, settings["checkpoint_files"])


def _write(files: tuple[tuple[str, bytes], ...], folder: Path) -> Path:
    """Write uploads into ``folder``; the recording among them (a .hea, an EDF, or a .csv/.npy signal)."""
    total = sum(len(d) for _, d in files)
    if total > MAX_UPLOAD_MB * 1e6:
        raise EcgnetError(f"the upload is {total / 1e6:.0f} MB, more than {MAX_UPLOAD_MB} MB; label it with 'ecgnet predict --record'")
    paths = []
    for name, data in files:
        path = folder / Path(name).name
        path.write_bytes(data)
        paths.append(path)
    for suffixes in ((".hea",), EDF_SUFFIXES, SIGNAL_FILE_SUFFIXES):
        found = [p for p in paths if p.suffix.lower() in suffixes]
        if found:
            return found[0]
    raise EcgnetError(f"no recording among {', '.join(p.name for p in paths)}: upload a WFDB .hea with its .dat, "
                      "an EDF file, or a .csv/.npy signal (with its sampling rate in the sidebar)")


@st.cache_data(max_entries=8, show_spinner="Labelling the recording…")
def _label(files: tuple[tuple[str, bytes], ...], model_name: str, _classifier: Predictor, detector: str, lead: str | None,
           fs: float | None, min_confidence: float | None) -> dict:
    with upload_folder() as tmp:
        path = BUNDLED_RECORD if files == EXAMPLE else _write(files, tmp)
        recording = read_recording(path, lead, fs)
    result = label_record(_classifier, recording, detector, min_confidence)
    return result | {"fs": recording.fs, "lead": recording.lead, "seconds": len(result["signal"]) / recording.fs}


@st.cache_data(max_entries=8, show_spinner="Judging the recording…")
def _judge(files: tuple[tuple[str, bytes], ...], model_name: str, _predictor: RecordPredictor, detector: str) -> dict:
    with upload_folder() as tmp:
        path = BUNDLED_ECG if files == EXAMPLE else _write(files, tmp)
        recording = read_record_leads(path)
    return _predictor.judge(recording, detector) | {"signals": recording.signals, "names": recording.names}


def judge(files: tuple[tuple[str, bytes], ...], model: RecordPredictor, settings: dict) -> dict:
    """A record model's verdict on the uploaded (or example 12-lead) recording, with its signals, computed once per upload."""
    return _judge(files, model.name, model, settings["detector"])


def label(files: tuple[tuple[str, bytes], ...], model: Predictor, settings: dict) -> dict:
    """``label_record`` of the uploaded (or example) recording, computed once per upload and settings."""
    return _label(files, model.name, model, settings["detector"], settings["lead"], settings["fs"], settings["min_confidence"])


def classify_beats(files: tuple[tuple[str, bytes], ...], model: Predictor, settings: dict) -> tuple[pd.DataFrame, np.ndarray, dict | None]:
    """Per-beat rows of an uploaded beat file, its beats, and metrics when it holds labels."""
    from ..data.beatfiles import read_beats_file

    if len(files) != 1:
        raise EcgnetError("upload one beat file (.csv, .csv.gz, .csv.xz, .npy or .mat)")
    with upload_folder() as tmp:
        path = tmp / Path(files[0][0]).name
        path.write_bytes(files[0][1])
        beats, labels = read_beats_file(path)
    probs = model.predict_proba(beats)
    rows = beat_rows(files[0][0], probs, labels, model.class_names, settings["min_confidence"])
    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in ("file", "probabilities")} | r["probabilities"] for r in rows])
    metrics = None if labels is None else classification_metrics(labels, probs.argmax(1), tuple(model.class_names), probs)
    return frame, beats, metrics


def next_beat(names: np.ndarray, kind: str, current: int) -> int:
    """Index of the next beat named ``kind`` after ``current`` (wrapping round), or ``current`` if none."""
    hits = np.flatnonzero(np.asarray(names) == kind)
    if not len(hits):
        return current
    later = hits[hits > current]
    return int(later[0] if len(later) else hits[0])


def clicked_beat(event) -> int | None:
    """The beat index of a clicked marker on the strip, if any."""
    points = (getattr(event, "selection", None) or {}).get("points", []) if event else []
    for point in points:
        data = point.get("customdata")
        if data is not None:
            return int(data[0] if isinstance(data, (list, tuple)) else data)
    return None


@st.cache_resource(max_entries=2)
def _torch_predictor(spec: str) -> Predictor:
    return Predictor.from_checkpoint(spec, "cpu")


def beat_attribution(result: dict, model, i: int) -> np.ndarray:
    """Gradient x input of beat ``i`` (PyTorch: a model labelling on ONNX Runtime is loaded in PyTorch for it)."""
    model = model if isinstance(model, Predictor) else _torch_predictor(model.name)
    rhythm = np.array([result["table"][c][i] for c in RHYTHM_FEATURES], dtype=np.float32)
    template = median_beat(result["beats"]) if model.needs_template else None
    return attribution(model, result["beats"][i], rhythm, template=template)


def beats_csv(result: dict) -> bytes:
    """Byte for byte the beats.csv of ``ecgnet predict --record``."""
    with tempfile.TemporaryDirectory() as tmp:
        write_beat_table(result, Path(tmp) / "beats.csv")
        return (Path(tmp) / "beats.csv").read_bytes()


def summary_json(result: dict) -> bytes:
    """Byte for byte the summary.json of ``ecgnet predict --record``."""
    return (json.dumps(result["summary"], indent=2) + "\n").encode()
