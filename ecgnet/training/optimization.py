"""What a run optimises with: Adam over the trainable parameters and the weight average (the loss: ecgnet.training.loss)."""
from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel

from ..config import Config
from ..models.model import ECGNet


def make_optimizer(model: ECGNet, cfg: Config) -> torch.optim.Optimizer:
    """Adam over the trainable parameters; in 'finetune' the trunk gets lr * trunk_lr_scale."""
    trunk = [p for p in model.trunk_parameters() if p.requires_grad]
    head = list(model.head.parameters())
    groups = [{"params": head, "lr": cfg.lr}]
    if trunk:
        groups.append({"params": trunk, "lr": cfg.lr * (cfg.trunk_lr_scale if cfg.mode == "finetune" else 1.0)})
    # The fused kernel updates all tensors in one call instead of one per tensor.
    fused = True if head[0].device.type in ("cpu", "cuda") else None
    return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, fused=fused)


def weight_average(model: ECGNet, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights (None when ``decay`` is 0).

    At a constant learning rate the validation score of the raw weights swings from epoch
    to epoch; the average follows the same path with the swings smoothed out. The decay
    warms up as min(decay, (1+n)/(10+n)) so that on short runs the average is not
    dominated by the first steps.
    """
    if not decay:
        return None

    def ema(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        # The weight stays a device tensor: no host sync per step on a GPU.
        torch._foreach_lerp_(averaged, current, 1 - ((1 + num_averaged) / (10 + num_averaged)).clamp(max=decay))

    return AveragedModel(model, multi_avg_fn=ema, use_buffers=True)
