"""Combined models: trained models answering as one, by the mean or the product of their calibrated probabilities.

- ``mean`` (an ensemble): cross-validation over records (``ecgnet.training.crossval.train_folds``) leaves K
  runs of one architecture, each selected on patients it never saw; on new patients their mean class
  probability beats any one of them (docs/experiments.md).
- ``product`` (log-linear pooling with equal weights, a product of experts): differently built models,
  e.g. the folds' ensemble and the linear rhythm model (``ecgnet.models.linear``); a class wins when every
  member finds it likely, so one member's confident mistake is tempered by the others. A member has no say
  on a class it was not fitted on (its ``fitted`` buffer: the linear model leaves out classes of a few
  training beats).

A ``Combined`` model is assembled from trained checkpoints (``crossval.combined_checkpoint``), never trained
whole, and is a registered model like the others: its output is the log of the combined probability, so a
softmax gives it back, and Predictor, evaluation, export, attribution and model files take it unchanged.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .model import BeatClassifier
from .registry import model_class, register_model

COMBINED = "combined"           # its registry name, stored as a checkpoint's model_name
RULES = ("mean", "product")     # mean of probabilities (an ensemble) or their normalised product (pooling)


@register_model(COMBINED, assembled=True)
class Combined(BeatClassifier):
    """``members`` ({"model_name", "model_args"} each), each read through its calibration temperature, combined by ``rule``."""

    def __init__(self, n_classes: int, members: list[dict], rule: str = "mean") -> None:
        super().__init__(n_classes, {"rule": rule})
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
        if not members or any(m["model_args"].get("n_classes", n_classes) != n_classes for m in members):
            raise ValueError(f"combining needs 1 or more models of {n_classes} classes, got {members}")
        self.rule = rule
        self.members = nn.ModuleList(model_class(m["model_name"])(**m["model_args"]) for m in members)
        self.member_names = [m["model_name"] for m in members]
        self.rhythm_dim = max(m.rhythm_dim for m in self.members)
        self.template = any(m.template for m in self.members)
        self.register_buffer("temperatures", torch.ones(len(members)))  # each member's calibration temperature

    @property
    def model_args(self) -> dict:
        return {"n_classes": self.n_classes, "rule": self.rule,
                "members": [{"model_name": n, "model_args": m.model_args} for n, m in zip(self.member_names, self.members)]}

    def submodels(self) -> list[BeatClassifier]:
        return list(self.members)

    def trunk_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.members for p in m.trunk_parameters()]

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None, run: Callable | None = None) -> torch.Tensor:
        """(batch, n_members, n_classes): each member's calibrated log-probabilities (a member without a template
        channel reads the beat alone). ``run(member, x, rhythm)`` gives a member's logits (default: its forward;
        ``ecgnet.models.fastpath`` passes its own)."""
        run = run or (lambda m, x, r: m(x, r))
        return torch.stack([F.log_softmax(run(m, x if m.template else x[:, :1], rhythm if m.rhythm_dim else None).float()
                                          / self.temperatures[k], 1) for k, m in enumerate(self.members)], 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """log of the combined probability (batch, n_classes)."""
        if self.rule == "mean":
            return torch.logsumexp(features.transpose(0, 1).contiguous(), 0) - math.log(len(self.members))
        opinions = torch.stack([getattr(m, "fitted", torch.ones_like(self.temperatures[:1]).expand(self.n_classes))
                                for m in self.members])                      # (n_members, n_classes) of 0 / 1
        voters = opinions.sum(0)
        mean = (features * opinions).sum(1) / voters.clamp(min=1)
        return F.log_softmax(mean.masked_fill(voters == 0, float("-inf")), 1)

    def forward_with(self, x: torch.Tensor, rhythm: torch.Tensor | None, run: Callable) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, rhythm, run))

    def reset_classifier(self, n_classes: int) -> None:
        for m in self.members:
            m.reset_classifier(n_classes)
        self.n_classes = n_classes


def upgrade_assembled(name: str, args: dict, state: dict) -> tuple[str, dict, dict]:
    """A model written as an ``ensemble`` or ``pooled`` model (ecgnet <= 0.3) as the ``combined`` model it is now:
    (name, model_args, state dict); any other model is returned as it is."""
    if name == "ensemble":
        member = {"model_name": args["member"], "model_args": args["member_args"]}
        return COMBINED, {"n_classes": args["n_classes"], "rule": "mean", "members": [member] * args["n_members"]}, state
    if name != "pooled":
        return name, args, state
    members, state = [], dict(state)
    for k, expert in enumerate(args["experts"]):
        prefix = f"experts.{k}."
        own = {key[len(prefix):]: state.pop(key) for key in list(state) if key.startswith(prefix)}
        member_name, member_args, own = upgrade_assembled(expert["model_name"], expert["model_args"], own)
        members.append({"model_name": member_name, "model_args": member_args})
        state.update({f"members.{k}.{key}": value for key, value in own.items()})
    return COMBINED, {"n_classes": args["n_classes"], "rule": "product", "members": members}, state
