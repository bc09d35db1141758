"""The network of Kachuee, Fazeli & Sarrafzadeh (2018), Fig. 2.

    beat (1 x 187)
    -> Conv1d 32 k5
    -> 5 x residual block [Conv1d 32 k5 -> ReLU -> Conv1d 32 k5 -> + input -> ReLU -> MaxPool 5 s2]
    -> flatten (64) -> FC 32 -> ReLU -> FC 32 -> FC n_classes   (softmax lives in the loss)

With 5 classes the net has 55,013 parameters, as in the paper. The trunk/head split
follows timm (``forward_features`` / ``forward_head`` / ``reset_classifier``): transfer
learning reuses the trunk of an MIT-BIH model under a new head. Faster CPU execution
of the same arithmetic lives in ``ecgnet.models.fastpath``.

``BeatClassifier`` is what every registered model (``ecgnet.models.registry``) offers: the
trunk/head split, ``model_args`` to rebuild it, ``reset_classifier``. The paper's net is
registered as ``kachuee`` and, with the beat's rhythm features (``ecgnet.signals.rhythm``)
joined to its 64 learned features in front of the head, as ``kachuee_rr``; with the beat's
difference from its record's median beat as a second stem channel too (``ecgnet.signals.template``),
as ``kachuee_rrt``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import BEAT_LENGTH
from ..signals.rhythm import RHYTHM_INPUTS
from .registry import register_model


class ResidualBlock(nn.Module):
    """conv k5 -> ReLU -> conv k5 -> add input -> ReLU -> max-pool 5, stride 2."""

    def __init__(self, channels: int = 32, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.pool = nn.MaxPool1d(5, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(x + self.conv2(F.relu(self.conv1(x)))))


def trunk_length(length: int = BEAT_LENGTH, n_blocks: int = 5) -> int:
    """Samples left after ``n_blocks`` poolings: 187 -> 92 -> 44 -> 20 -> 8 -> 2."""
    for _ in range(n_blocks):
        length = (length - 5) // 2 + 1
    return length


class BeatClassifier(nn.Module):
    """A beat classifier: ``forward_features`` (trunk) then ``forward_head`` (``self.head``).

    Subclasses build ``self.head`` with ``_make_head(n_classes)``, pass their constructor
    arguments up as ``args`` (stored in checkpoints as ``model_args``) and take rhythm
    inputs only if they set ``rhythm_dim``.
    """

    rhythm_dim: int = 0
    template: bool = False  # whether the input holds each beat's record template as a second channel (ecgnet.signals.template)

    def __init__(self, n_classes: int, args: dict) -> None:
        super().__init__()
        self.n_classes = n_classes
        self._args = dict(args)

    @property
    def model_args(self) -> dict:
        """Constructor arguments, stored in checkpoints so a model can be rebuilt without a config."""
        return {"n_classes": self.n_classes, **self._args}

    def trunk_parameters(self) -> list[nn.Parameter]:
        """Every parameter outside the head: what transfer reuses (and 'frozen' freezes)."""
        head = {id(p) for p in self.head.parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _make_head(self, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, rhythm))

    def submodels(self) -> list[BeatClassifier]:
        """The trained models this one combines (none for a single net)."""
        return []

    def forward_with(self, x: torch.Tensor, rhythm: torch.Tensor | None, run) -> torch.Tensor:
        """The logits, with ``run(model, x, rhythm)`` giving each submodel's logits (a single net runs itself)."""
        return self(x, rhythm)

    def reset_classifier(self, n_classes: int) -> None:
        """Replace the whole head with a freshly initialised one for ``n_classes``.

        Unlike timm, where only the last layer is the classifier, the paper's transfer
        experiment retrains all three FC layers on top of the frozen conv trunk.
        """
        self.n_classes = n_classes
        self.head = self._make_head(n_classes).to(next(self.parameters()).device)


@register_model("kachuee_rrt_small", rhythm_dim=len(RHYTHM_INPUTS), template=True, channels=16)  # a quarter of the MACs
@register_model("kachuee_rrt", rhythm_dim=len(RHYTHM_INPUTS), template=True)  # + the beat's record template
@register_model("kachuee_rr", rhythm_dim=len(RHYTHM_INPUTS))   # the same trunk + rhythm features in the head
@register_model("kachuee")                                      # the paper's net (Fig. 2), 55,013 parameters
class ECGNet(BeatClassifier):
    """Kachuee et al. residual CNN: trunk (conv + 5 residual blocks) and a 3-layer FC head.

    With ``rhythm_dim`` > 0 the head also takes that many rhythm inputs per beat, joined
    to the trunk's features (``forward(x, rhythm)``). With ``template`` the input holds each beat's
    record template as a second channel, and the stem reads the beat and its difference from it.
    """

    def __init__(self, n_classes: int = 5, channels: int = 32, n_blocks: int = 5, hidden: int = 32, rhythm_dim: int = 0,
                 template: bool = False) -> None:
        args = {"channels": channels, "n_blocks": n_blocks, "hidden": hidden, "rhythm_dim": rhythm_dim}
        super().__init__(n_classes, args | ({"template": True} if template else {}))
        self.channels, self.n_blocks, self.hidden = channels, n_blocks, hidden
        self.rhythm_dim, self.template = rhythm_dim, template
        self.stem = nn.Conv1d(2 if template else 1, channels, kernel_size=5, padding=2)
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(n_blocks)])
        self.num_features = channels * trunk_length(BEAT_LENGTH, n_blocks) + rhythm_dim
        self.head = self._make_head(n_classes)

    def _make_head(self, n_classes: int) -> nn.Sequential:
        # The paper's head has no ReLU after the second FC layer; its three linear
        # layers are what give 55,013 parameters.
        return nn.Sequential(nn.Linear(self.num_features, self.hidden), nn.ReLU(),
                             nn.Linear(self.hidden, self.hidden), nn.Linear(self.hidden, n_classes))

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, 1, 187) beats, or (batch, 2, 187) beats and templates [and (batch, rhythm_dim) rhythm inputs]
        -> (batch, num_features)."""
        return self.join_rhythm(self.blocks(self.stem(self.stem_input(x))).flatten(1), rhythm)

    def stem_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the stem convolves: the beat, and with ``template`` also its difference from its record's template."""
        if not self.template:
            return x
        if x.shape[1] != 2:
            raise ValueError("this model compares each beat with its record's template: call it on (batch, 2, 187) "
                             "beats and templates (ecgnet.signals.template)")
        beat = x[:, :1]
        return torch.cat([beat, beat - x[:, 1:]], 1)

    def join_rhythm(self, features: torch.Tensor, rhythm: torch.Tensor | None) -> torch.Tensor:
        """The trunk's 64 features, followed by the rhythm inputs when the model takes them."""
        if not self.rhythm_dim:
            return features
        if rhythm is None:
            raise ValueError("this model takes rhythm inputs: call it as model(beats, rhythm)")
        return torch.cat([features, rhythm], dim=1)



def freeze_trunk(model: BeatClassifier) -> None:
    """Stop gradients through the conv trunk (the transfer setting of the paper)."""
    for p in model.trunk_parameters():
        p.requires_grad_(False)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
