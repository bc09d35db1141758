"""A linear beat classifier on rhythm and coarse morphology, fitted in closed form.

Multinomial logistic regression (class-balanced, L2) on each beat's rhythm inputs
(``ecgnet.signals.rhythm.rhythm_inputs``) and every ``step``-th sample of the beat, standardised
on the training beats: the classic inter-patient recipe (de Chazal et al. 2004 use linear
discriminants on R-R intervals and morphology). On its own it over-calls S on new patients;
pooled with the CNN (``ecgnet.models.combined``) it supplies what the CNN underuses, the rhythm,
with a bias that does not learn the training patients. Registered as ``linear_rr``; fitted by
``fit_linear`` (sklearn's lbfgs), never by the trainer, and run as a torch module like the others.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..constants import BEAT_LENGTH
from ..errors import EcgnetError
from .model import BeatClassifier
from .registry import register_model

if TYPE_CHECKING:  # the data layer (pandas, scikit-learn) is not needed to run a fitted model
    from ..data.datasets import BeatDataset

LINEAR = "linear_rr"     # its registry name
LINEAR_STEP = 9          # every 9th sample: 21 of the beat's 187 (the probe used about 20)
LINEAR_C = 0.1           # inverse L2 strength on standardised inputs
MIN_CLASS_BEATS = 50     # a class with fewer training beats is not fitted (MIT-BIH DS1 holds 8 Q beats);
UNFITTED_LOGIT = -30.0   # alone the model gives it no probability, pooled it abstains there (``fitted``)
MAX_ITER = 3000


@register_model(LINEAR, assembled=True)
class RhythmLinear(BeatClassifier):
    """Logits = W @ standardised([rhythm inputs, beat[::step]]) + b; ``forward(x, rhythm)`` like ``kachuee_rr``."""

    def __init__(self, n_classes: int = 5, rhythm_dim: int = 5, step: int = LINEAR_STEP) -> None:
        super().__init__(n_classes, {"rhythm_dim": rhythm_dim, "step": step})
        self.rhythm_dim, self.step = rhythm_dim, step
        self.num_features = rhythm_dim + len(range(0, BEAT_LENGTH, step))
        self.register_buffer("mean", torch.zeros(self.num_features))   # of the training beats' inputs
        self.register_buffer("scale", torch.ones(self.num_features))   # their standard deviation
        self.register_buffer("fitted", torch.ones(n_classes))          # 1 for the classes it was fitted on, 0 for the others
        self.head = self._make_head(n_classes)

    def _make_head(self, n_classes: int) -> nn.Linear:
        return nn.Linear(self.num_features, n_classes)

    def inputs(self, x: torch.Tensor, rhythm: torch.Tensor | None) -> torch.Tensor:
        """(batch, num_features): the rhythm inputs, then the beat (channel 0 of x) every ``step`` samples."""
        if rhythm is None:
            raise ValueError("this model classifies beats with their rhythm: call it on (beats, rhythm inputs)")
        return torch.cat([rhythm, x[:, 0, ::self.step]], 1)

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        return (self.inputs(x, rhythm) - self.mean) / self.scale


def fit_linear(data: BeatDataset, c: float = LINEAR_C, step: int = LINEAR_STEP) -> RhythmLinear:
    """A ``RhythmLinear`` fitted on ``data`` (beats with rhythm inputs): class-balanced logistic regression."""
    from sklearn.exceptions import ConvergenceWarning  # only fitting needs scikit-learn, not loading or predicting
    from sklearn.linear_model import LogisticRegression

    if not data.has_rhythm:
        raise EcgnetError("the linear model reads each beat's rhythm, which these beats do not carry (Kaggle CSVs); "
                          "build the data with 'ecgnet prepare mitdb'")
    model = RhythmLinear(len(data.class_names), data.rhythm.shape[1], step)
    x = model.inputs(data.x, data.rhythm).double().numpy()
    y = data.y.numpy()
    fitted = np.flatnonzero(np.bincount(y, minlength=model.n_classes) >= MIN_CLASS_BEATS)
    if len(fitted) < 2:
        raise EcgnetError(f"the linear model needs 2 or more classes with {MIN_CLASS_BEATS}+ training beats, "
                          f"got {len(fitted)} ({', '.join(data.class_names[i] for i in fitted)})")
    rows = np.isin(y, fitted)
    mean, scale = x[rows].mean(0), x[rows].std(0)
    scale[scale == 0] = 1.0
    with warnings.catch_warnings():  # lbfgs stopping at MAX_ITER leaves a usable fit, within tolerance of the optimum
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER).fit((x[rows] - mean) / scale, y[rows])
    coef, intercept = fit.coef_, fit.intercept_
    if len(fitted) == 2:  # sklearn keeps one row for two classes: its logit of the second against the first's 0
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    weight = np.zeros((model.n_classes, model.num_features))
    bias = np.full(model.n_classes, UNFITTED_LOGIT)
    weight[fit.classes_], bias[fit.classes_] = coef, intercept
    with torch.no_grad():
        model.mean.copy_(torch.from_numpy(mean)), model.scale.copy_(torch.from_numpy(scale))
        model.head.weight.copy_(torch.from_numpy(weight)), model.head.bias.copy_(torch.from_numpy(bias))
        model.fitted.zero_()[fit.classes_] = 1.0
    return model
