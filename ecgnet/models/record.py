"""A record-level classifier on the paper's trunk: a recording's beats, in every lead, to one verdict (MI or NORM).

    beats (records x beats x 12 leads x 187), which beats are real, which leads are present
    -> the trunk of Fig. 2 on every beat of every present lead (transfer: the shipped 'mitbih' trunk)
    -> per lead, the mean of its beats' 64 features
    -> pooled over leads: 'concat' (the 12 slots side by side, an absent lead zero, plus the presence mask),
       'attention' (a learned weight per present lead, each lead's features plus its lead embedding), or
       'vote' (the paper's transfer scored per record: a head per beat, its probabilities averaged)
    -> head: FC hidden -> ReLU -> dropout -> FC n_classes

The same weights judge 12 leads or lead II alone (trained with leads dropped at random). ``mode`` of the
training (``ecgnet.training.record_training``) decides whether the trunk is frozen, fine-tuned or trained
from scratch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import STANDARD_LEADS
from .model import ECGNet
from .registry import register_model

POOLINGS = ("concat", "attention", "vote")


@register_model("lead_pool", record=True)
class LeadPool(nn.Module):
    """Beats of a recording's leads -> record logits (``forward(beats, beat_mask, present)``)."""

    def __init__(self, n_classes: int = 2, channels: int = 32, n_blocks: int = 5, hidden: int = 32, pooling: str = "concat",
                 dropout: float = 0.3) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        self.n_classes, self.pooling = n_classes, pooling
        self._args = {"channels": channels, "n_blocks": n_blocks, "hidden": hidden, "pooling": pooling, "dropout": dropout}
        self.trunk = ECGNet(n_classes, channels, n_blocks, hidden)
        self.trunk.head = nn.Identity()  # only the conv trunk is used; the head below reads its features
        width = self.trunk.num_features
        n_leads = len(STANDARD_LEADS)
        self.lead_embedding = nn.Parameter(torch.zeros(n_leads, width))
        self.attention = nn.Linear(width, 1)
        pooled = width * n_leads + n_leads if pooling == "concat" else width
        self.head = nn.Sequential(nn.Linear(pooled, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    @property
    def model_args(self) -> dict:
        return {"n_classes": self.n_classes, **self._args}

    def trunk_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def forward_features(self, beats: torch.Tensor, beat_mask: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(R, K, L, 187) beats -> (R, K, L, 64) trunk features, computed for real beats of present leads only (others 0)."""
        valid = beat_mask[:, :, None] & present[:, None, :]
        features = beats.new_zeros(*valid.shape, self.trunk.num_features)
        features[valid] = self.trunk.forward_features(beats[valid].unsqueeze(1))
        return features

    def forward_head(self, features: torch.Tensor, beat_mask: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(R, K, L, 64) beat features -> (R, n_classes) logits (for 'vote': the log of the averaged beat probabilities)."""
        valid = beat_mask[:, :, None] & present[:, None, :]
        features = features * valid[..., None]
        if self.pooling == "vote":
            probs = F.softmax(self.head(features + self.lead_embedding), -1) * valid[..., None]
            return torch.log(probs.sum((1, 2)) / valid.sum((1, 2))[:, None].clamp(min=1) + 1e-12)
        per_lead = features.sum(1) / beat_mask.sum(1)[:, None, None].clamp(min=1)     # (R, L, 64); absent leads are 0
        if self.pooling == "concat":
            return self.head(torch.cat([per_lead.flatten(1), present.float()], 1))
        embedded = per_lead + self.lead_embedding
        scores = self.attention(torch.tanh(embedded)).squeeze(-1).masked_fill(~present, float("-inf"))
        return self.head((torch.softmax(scores, 1)[..., None] * embedded).sum(1))

    def forward(self, beats: torch.Tensor, beat_mask: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(R, K, L, 187) beats, (R, K) real beats, (R, L) present leads -> (R, n_classes) logits."""
        return self.forward_head(self.forward_features(beats, beat_mask, present), beat_mask, present)

    def beat_logits(self, features: torch.Tensor, beat_mask: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """'vote': each real beat's logits (n, n_classes) from its features, and its record's index (n,), for a loss per beat."""
        valid = beat_mask[:, :, None] & present[:, None, :]
        logits = self.head(features + self.lead_embedding)[valid]
        record = torch.arange(len(features), device=features.device)[:, None, None].expand_as(valid)[valid]
        return logits, record

def only_leads(present: torch.Tensor, leads: tuple[str, ...]) -> torch.Tensor:
    """``present`` (R, 12) with every lead but ``leads`` marked absent (e.g. judging by lead II alone)."""
    keep = torch.tensor([name in leads for name in STANDARD_LEADS], device=present.device)
    return present & keep


@torch.no_grad()
def trunk_features(model: LeadPool, beats, beat_mask, present, batch_size: int = 64) -> torch.Tensor:
    """(R, K, L, 64) trunk features of every real beat of every present lead (what a frozen trunk gives each epoch)."""
    model.eval()
    parts = [model.forward_features(*(torch.as_tensor(a[s:s + batch_size]) for a in (beats, beat_mask, present)))
             for s in range(0, len(beats), batch_size)]
    return torch.cat(parts)


@torch.no_grad()
def record_probabilities(model: LeadPool, beats, beat_mask, present, batch_size: int = 64, features: bool = False) -> torch.Tensor:
    """(R, n_classes) class probabilities of recordings given as NumPy arrays or tensors, ``batch_size`` records at a
    time; with ``features`` the first array holds the beats' trunk features instead of the beats."""
    model.eval()
    out = []
    for start in range(0, len(beats), batch_size):
        part = [torch.as_tensor(a[start:start + batch_size]) for a in (beats, beat_mask, present)]
        out.append(torch.softmax(model.forward_head(*part) if features else model(*part), -1))
    return torch.cat(out) if out else torch.empty(0, model.n_classes)
