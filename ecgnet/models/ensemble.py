"""Ensembles: trained runs of one architecture answering as one model.

Cross-validation over records (``ecgnet.training.crossval.train_folds``) leaves K models, each selected on patients
it never saw; on new patients their mean class probability beats any one of them
(docs/experiments.md). An ``Ensemble`` is a registered model like the others: its output is
the log of its members' mean calibrated probability, so a softmax of it gives that mean
back, and Predictor, evaluation, export, attribution and model files take it unchanged.
It is assembled from trained checkpoints (``crossval.ensemble_checkpoint``), never trained whole.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .model import BeatClassifier

ENSEMBLE = "ensemble"  # its registry name, stored as a checkpoint's model_name


class Ensemble(BeatClassifier):
    """``n_members`` models ``member(**member_args)``; log of their mean softmax(logits / T_k)."""

    def __init__(self, n_classes: int, member: str, member_args: dict, n_members: int) -> None:
        from .registry import model_class  # the registry lists this class

        super().__init__(n_classes, {"member": member, "n_members": n_members})
        if member_args.get("n_classes", n_classes) != n_classes or n_members < 1:
            raise ValueError(f"an ensemble of {n_classes} classes needs >= 1 member of as many (got {n_members} x {member_args})")
        self.members = nn.ModuleList(model_class(member)(**member_args) for _ in range(n_members))
        self.rhythm_dim, self.template = self.members[0].rhythm_dim, self.members[0].template
        self.register_buffer("temperatures", torch.ones(n_members))  # each member's calibration temperature

    @property
    def model_args(self) -> dict:
        return {"n_classes": self.n_classes, "member": self._args["member"], "member_args": self.members[0].model_args,
                "n_members": len(self.members)}

    def trunk_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.members for p in m.trunk_parameters()]

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, n_members, member features): each member's trunk output."""
        return torch.stack([m.forward_features(x, rhythm) for m in self.members], 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """log of the members' mean calibrated probability (batch, n_classes)."""
        log_probs = torch.stack([F.log_softmax(m.forward_head(features[:, k]).float() / self.temperatures[k], 1)
                                 for k, m in enumerate(self.members)])
        return torch.logsumexp(log_probs, 0) - math.log(len(self.members))

    def reset_classifier(self, n_classes: int) -> None:
        for m in self.members:
            m.reset_classifier(n_classes)
        self.n_classes = n_classes
