"""Prediction with trained weights in PyTorch: a checkpoint, a model file or a shipped model, ready to classify beats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import EcgnetError
from ..models.checkpoint import model_from_checkpoint, temperature_of
from ..models.fastpath import FROZEN_MIN_BEATS, freeze_for_cpu, predict_logits, uses_cpu_fast_path
from ..models.pretrained import resolve_checkpoint
from ..runtime import select_device
from ..signals.context import BeatContext, as_context
from ..signals.template import stack_template


class Predictor:
    """A trained model ready to classify beats (eval mode, inference only).

    Probabilities are ``softmax(logits / T)`` with the calibration temperature T stored
    with the weights (1 when there is none). On CPU, calls with 64 beats or more run
    through a frozen graph (``fast=True``, ecgnet.models.fastpath), built once on first use; the
    answers equal the eager model's to 1e-5.
    """

    def __init__(self, checkpoint: dict, device: str = "auto", batch_size: int = 1024, fast: bool = True,
                 source: str = "checkpoint") -> None:
        self.device = select_device(device)
        self.model = model_from_checkpoint(checkpoint, source).to(self.device).eval()
        self.class_names: list[str] = list(checkpoint["class_names"])
        self.task: str = checkpoint["task"]
        self.model_name: str = checkpoint.get("model_name", "kachuee")
        self.before_r_s: float = checkpoint.get("recipe", {}).get("before_r_s", 0.0)  # how its beats were cut
        self.temperature = temperature_of(checkpoint)
        self.name = source  # shown in outputs and errors: the shipped name or the file
        self.batch_size = batch_size
        self.fast = fast
        self._frozen = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", batch_size: int = 1024, fast: bool = True) -> "Predictor":
        """A predictor for a shipped model name ('mitbih', see ``ecgnet models``), a model file, or a best.pt / last.pt."""
        return cls(resolve_checkpoint(path), device, batch_size, fast, source=str(path))

    @property
    def needs_rhythm(self) -> bool:
        """Whether the model takes rhythm features (``kachuee_rr``): then beats alone are not enough."""
        return bool(self.model.rhythm_dim)

    @property
    def needs_template(self) -> bool:
        """Whether the model compares each beat with its record's template (``kachuee_rrt``, ``ecgnet.signals.template``)."""
        return self.model.template

    def logits(self, beats: np.ndarray | BeatContext, rhythm: np.ndarray | None = None, template: np.ndarray | None = None) -> torch.Tensor:
        """Uncalibrated logits (n, n_classes) of beats in context: a ``BeatContext``, or beats (n, 187) of one recording
        [with their rhythm features (n, 4), ``ecgnet.signals.rhythm``, and for a template model ``template``, (187,) or
        one per beat, by default their median: ``BeatContext.of_beats``]."""
        context = as_context(beats, rhythm, template)
        beats = context.beats
        x = torch.from_numpy(stack_template(beats, context.templates) if self.needs_template and len(beats) else beats[:, None])
        r = None
        if self.needs_rhythm:
            if context.rhythm is None:
                raise EcgnetError(f"{self.name}: model '{self.model_name}' classifies beats with their rhythm, which beat files "
                                  "do not carry; label a whole recording (--record), or use a 'kachuee' model such as 'mitbih' for single beats")
            r = torch.from_numpy(context.rhythm)
        if self.fast and self._frozen is None and self.device.type == "cpu" and len(x) >= FROZEN_MIN_BEATS and uses_cpu_fast_path(self.model):
            self._frozen = freeze_for_cpu(self.model)
        return predict_logits(self.model, x, self.batch_size, self.device, frozen=self._frozen, rhythm=r)

    def answer(self, logits: torch.Tensor, context: BeatContext) -> np.ndarray:
        """The probabilities the beats are labelled by: ``softmax(logits / T)``, then the context's irregular-rhythm rule."""
        return context.answer((logits / self.temperature).softmax(1).numpy(), self.class_names)

    def predict_proba(self, beats: np.ndarray | BeatContext, rhythm: np.ndarray | None = None,
                      template: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities (n, n_classes) of beats in context (as ``logits``), calibrated, S made N in irregular rhythm."""
        context = as_context(beats, rhythm, template)
        return self.answer(self.logits(context), context)

    def predict(self, beats: np.ndarray | BeatContext, rhythm: np.ndarray | None = None, template: np.ndarray | None = None) -> np.ndarray:
        """Class names (n,) of beats in context (as ``predict_proba``)."""
        return np.asarray(self.class_names)[self.predict_proba(beats, rhythm, template).argmax(1)]
