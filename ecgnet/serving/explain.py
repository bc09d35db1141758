"""Why a beat got its label: a per-sample attribution of the class's score.

Gradient x input (Shrikumar et al. 2016): one backward pass per beat, so the web page
answers a click at once. For this piecewise-linear net (convolutions, ReLU, max-pooling)
it is exact to first order around the beat, and it is zero on the zero padding after
the beat, which carries no evidence. Integrated Gradients (captum) averages ~50 such
passes along a path from a baseline: smoother maps, 50x the cost, and a baseline to pick.
"""
from __future__ import annotations

import numpy as np
import torch

from ..constants import BEAT_LENGTH
from ..signals.rhythm import rhythm_inputs
from .inference import Predictor


def attribution(predictor: Predictor, beat: np.ndarray, rhythm: np.ndarray | None = None, target: int | None = None,
                template: np.ndarray | None = None) -> np.ndarray:
    """(187,) contribution of each sample to the logit of ``target`` (default: the predicted class); a template
    model needs the beat's record ``template`` (``ecgnet.signals.template``), which is held fixed."""
    model = predictor.model
    x = torch.tensor(np.asarray(beat, dtype=np.float32).reshape(1, 1, BEAT_LENGTH), device=predictor.device, requires_grad=True)
    r = None
    if model.rhythm_dim:
        r = torch.from_numpy(rhythm_inputs(np.asarray(rhythm, dtype=np.float32).reshape(1, -1))).to(predictor.device)
    with torch.enable_grad():
        inputs = x
        if model.template:
            t = torch.from_numpy(np.asarray(template, dtype=np.float32).reshape(1, 1, BEAT_LENGTH)).to(predictor.device)
            inputs = torch.cat([x, t], 1)
        logits = model(inputs, r)
        k = int(logits.argmax(1)) if target is None else target
        (grad,) = torch.autograd.grad(logits[0, k], x)  # the input's gradient only: the weights' stay untouched
    return (grad * x).detach().cpu().reshape(-1).numpy()
