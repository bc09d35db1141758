"""Pooling differently built models: the normalised product of their calibrated probabilities.

Log-linear pooling with equal weights (a product of experts): a class wins when every expert
finds it likely, so one expert's confident mistake is tempered by the others. An expert has no say
on a class it was not fitted on (the linear model leaves out classes of a few training beats). On MIT-BIH DS2 the
cross-validated CNN ensemble pooled with the linear rhythm model (``ecgnet.models.linear``) finds more S
beats at a higher +P than either alone (docs/experiments.md). A ``Pooled`` model is assembled from
trained checkpoints (``crossval.pooled_checkpoint``), never trained whole, and is a registered model
like the others: its output is the log of the pooled probability, so Predictor, evaluation,
export and attribution take it unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .model import BeatClassifier

POOLED = "pooled"  # its registry name, stored as a checkpoint's model_name


class Pooled(BeatClassifier):
    """``experts`` ({"model_name", "model_args"} each): log_softmax of the mean of their log softmax(logits / T_k)."""

    def __init__(self, n_classes: int, experts: list[dict]) -> None:
        from .registry import model_class  # the registry lists this class

        super().__init__(n_classes, {})
        if len(experts) < 2 or any(e["model_args"].get("n_classes", n_classes) != n_classes for e in experts):
            raise ValueError(f"pooling needs 2 or more models of {n_classes} classes, got {experts}")
        self.experts = nn.ModuleList(model_class(e["model_name"])(**e["model_args"]) for e in experts)
        self.expert_names = [e["model_name"] for e in experts]
        self.rhythm_dim = max(m.rhythm_dim for m in self.experts)
        self.template = any(m.template for m in self.experts)
        self.register_buffer("temperatures", torch.ones(len(experts)))  # each expert's calibration temperature

    @property
    def model_args(self) -> dict:
        return {"n_classes": self.n_classes,
                "experts": [{"model_name": n, "model_args": m.model_args} for n, m in zip(self.expert_names, self.experts)]}

    def trunk_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.experts for p in m.trunk_parameters()]

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None, run: Callable | None = None) -> torch.Tensor:
        """(batch, n_experts, n_classes): each expert's calibrated log-probabilities (an expert without a
        template channel reads the beat alone). ``run(expert, x, rhythm)`` gives an expert's logits (default:
        its forward; ``ecgnet.models.fastpath`` passes its own)."""
        run = run or (lambda m, x, r: m(x, r))
        return torch.stack([F.log_softmax(run(m, x if m.template else x[:, :1], rhythm if m.rhythm_dim else None).float()
                                          / self.temperatures[k], 1) for k, m in enumerate(self.experts)], 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """log of the experts' normalised geometric-mean probability (batch, n_classes); on a class an expert was
        not fitted on (the linear model's rare classes, its ``fitted`` buffer) the others decide."""
        opinions = torch.stack([getattr(m, "fitted", torch.ones_like(self.temperatures[:1]).expand(self.n_classes))
                                for m in self.experts])                      # (n_experts, n_classes) of 0 / 1
        voters = opinions.sum(0)
        mean = (features * opinions).sum(1) / voters.clamp(min=1)
        return F.log_softmax(mean.masked_fill(voters == 0, float("-inf")), 1)

    def reset_classifier(self, n_classes: int) -> None:
        for m in self.experts:
            m.reset_classifier(n_classes)
        self.n_classes = n_classes
