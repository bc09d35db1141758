"""Beat classification with ONNX Runtime, without PyTorch: a model written by ``ecgnet export --onnx``.

This module imports neither torch nor any module that does; with ``ecgnet.serving.labelling`` it
labels beat files and recordings on a machine that has only numpy, scipy, pandas, wfdb,
matplotlib and onnxruntime.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..constants import BEAT_LENGTH, ONNX_KIND, ONNX_METADATA_KEY
from ..errors import EcgnetError
from ..signals.context import BeatContext, as_context

CHUNK = 4096                    # beats per run call: bounded memory for a whole Holter recording


def _session(path: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise EcgnetError("the onnxruntime backend needs ONNX Runtime: pip install onnxruntime") from None
    if not path.is_file():
        raise EcgnetError(f"ONNX model {path} not found; write one with 'ecgnet export --checkpoint mitbih --onnx {path}'")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: the one-line message below says what went wrong
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for every unreadable file
        raise EcgnetError(f"{path} is not a readable ONNX model ({e.__class__.__name__}); export it again with 'ecgnet export --onnx'") from None


class OnnxPredictor:
    """An exported ecgnet model in ONNX Runtime: the same ``predict_proba`` / ``predict`` as ``Predictor``."""

    def __init__(self, path: str | Path, threads: int = 0, name: str | None = None) -> None:
        path = Path(path)
        self.session = _session(path, threads)
        self.name = name or str(path)
        meta = self._metadata(path)
        self.task: str = meta["task"]
        self.class_names: list[str] = list(meta["class_names"])
        self.model_name: str = meta.get("model_name", "kachuee")
        self.before_r_s: float = float(meta.get("recipe", {}).get("before_r_s", 0.0))
        self.needs_rhythm = bool(meta.get("rhythm_inputs"))
        self.needs_template = bool(meta.get("template", False))
        self._check_graph(path)

    def _metadata(self, path: Path) -> dict:
        try:
            text = self.session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
            meta = json.loads(text) if text else None
        except (UnicodeDecodeError, json.JSONDecodeError, RuntimeError):  # damaged metadata strings
            meta = None
        if not isinstance(meta, dict) or meta.get("kind") != ONNX_KIND or not meta.get("class_names") or "task" not in meta:
            raise EcgnetError(f"{path} is an ONNX model without ecgnet metadata (a model of another tool or task); "
                              "export an ecgnet model with 'ecgnet export --checkpoint X --onnx FILE'")
        if meta.get("beat_length", BEAT_LENGTH) != BEAT_LENGTH:
            raise EcgnetError(f"{path} takes beats of {meta.get('beat_length')} samples, ecgnet beats have {BEAT_LENGTH}")
        return meta

    def _check_graph(self, path: Path) -> None:
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = self.session.get_outputs()
        expected = {"beats"} | ({"rhythm"} if self.needs_rhythm else set()) | ({"template"} if self.needs_template else set())
        if set(inputs) != expected or inputs["beats"][-1] != BEAT_LENGTH or outputs[0].shape[-1] != len(self.class_names):
            raise EcgnetError(f"{path}: its graph (inputs {inputs}, {outputs[0].shape[-1]} outputs) does not match its ecgnet "
                              f"metadata ({len(self.class_names)} classes of task '{self.task}'); export it again")

    def predict_proba(self, beats: np.ndarray | BeatContext, rhythm: np.ndarray | None = None,
                      template: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities (n, n_classes) of beats in context (a ``BeatContext``, or beats of one recording with
        their rhythm features and template, as ``Predictor.logits``), calibrated, S made N in irregular rhythm."""
        context = as_context(beats, rhythm, template)
        x = context.beats
        feeds = {"beats": x}
        if self.needs_template and len(x):
            feeds["template"] = context.templates
        if self.needs_rhythm:
            if context.rhythm is None:
                raise EcgnetError(f"{self.name}: model '{self.model_name}' classifies beats with their rhythm, which beat files "
                                  "do not carry; label a whole recording (--record)")
            feeds["rhythm"] = context.rhythm
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        try:
            parts = [self.session.run(["probabilities"], {k: v[i:i + CHUNK] for k, v in feeds.items()})[0] for i in range(0, len(x), CHUNK)]
        except Exception as e:  # noqa: BLE001 - onnxruntime's own error types: a graph that loads but cannot run
            raise EcgnetError(f"{self.name}: the ONNX model failed to run ({e.__class__.__name__}); export it again") from None
        probs = np.concatenate(parts)
        if probs.shape != (len(x), len(self.class_names)) or not np.isfinite(probs).all():
            raise EcgnetError(f"{self.name}: the ONNX model returned {probs.shape} values that are not probabilities; export it again")
        return context.answer(probs, self.class_names)

    def predict(self, beats: np.ndarray | BeatContext, rhythm: np.ndarray | None = None, template: np.ndarray | None = None) -> np.ndarray:
        """Class names (n,) of beats in context (as ``predict_proba``)."""
        return np.asarray(self.class_names)[self.predict_proba(beats, rhythm, template).argmax(1)]
