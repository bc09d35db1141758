"""The network of Kachuee, Fazeli & Sarrafzadeh (2018), Fig. 2.

Input: (batch, 1, 187) heartbeats. A conv trunk (one Conv1d and five residual
blocks) maps a beat to a 64-dimensional representation; a fully connected head
maps that to class logits (softmax lives in the loss). With 5 classes the net has
55,013 parameters, as in the paper.

Layout: the trunk runs on (batch, channels, 1, length) tensors in channels-last
memory, with each Conv1d applied as a (1, k) 2-D convolution. The parameters and
the arithmetic are those of Conv1d (tests check against ``F.conv1d``), but oneDNN's
channels-last 2-D kernels train this net faster on CPU than its 1-D or NCHW paths
(bench/train_throughput.py).

The trunk/head split follows timm (``forward_features`` / ``forward_head`` /
``reset_classifier``) because transfer learning reuses the frozen trunk of an
MIT-BIH model with a new head on PTB beats.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BEAT_LENGTH = 187


def _window_rows(x: torch.Tensor, padding: int, k: int) -> torch.Tensor:
    """The (B*L, k*C) matrix of zero-padded k-sample input windows of (B, C, 1, L) ``x``.

    Channels-last memory is (B, L, C): after padding along L, each output position's k
    input rows are k*C consecutive floats, so the windows are one strided copy.
    """
    b, c, _, length = x.shape
    x_pad = F.pad(x.permute(0, 2, 3, 1).reshape(b, length, c), (0, 0, padding, padding))
    return x_pad.as_strided((b, length, k * c), (x_pad.stride(0), c, 1)).reshape(b * length, k * c)


class _WindowGemmConv(torch.autograd.Function):
    """A stride-1 (1, k) convolution of (B, C, 1, L) tensors, returned channels-last, whose
    weight gradient is one matrix product over the input windows.

    oneDNN runs this net's 32-channel forward and input-gradient convolutions near the
    CPU's GEMM peak, but its weight gradient at about 40 GFLOP/s: 6.0 of 10.2 ms per
    187-sample layer at batch 128. As a product of the (B*L, k*C) input windows with the
    (B*L, C) output gradient, it takes 4.3 ms (training step 1.04x faster).

    With ``gemm_forward`` the forward is a product over the windows too. That is the
    stem's path: with one input channel, a 2-D convolution cannot tell channels-last from
    NCHW and emits NCHW, which would turn every later layer NCHW (about 1.1x slower); and
    the windows, kept for the backward, make the stem's weight gradient a 0.2 ms product.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int,
                gemm_forward: bool) -> torch.Tensor:
        c_out, c_in, _, k = weight.shape
        b, _, _, length = x.shape
        ctx.padding = padding
        if not gemm_forward:
            ctx.save_for_backward(x, weight, None)
            return F.conv2d(x, weight, bias, padding=(0, padding))
        windows = _window_rows(x, padding, k)
        w_rows = weight.permute(3, 1, 2, 0).reshape(k * c_in, c_out)  # row kk*C_in + c, as in the windows
        out = torch.addmm(bias, windows, w_rows)                        # (B*L, C_out) = (B, L, C_out) memory
        ctx.save_for_backward(x, weight, windows)
        return out.view(b, 1, length, c_out).permute(0, 3, 1, 2)        # (B, C_out, 1, L) channels-last view

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, windows = ctx.saved_tensors
        c_out, c_in, _, k = weight.shape
        b, _, _, length = x.shape
        grad = grad.contiguous(memory_format=torch.channels_last)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(grad, x, weight, None, (1, 1), (0, ctx.padding), (1, 1), False,
                                                         (0, 0), 1, (True, False, False))[0]
        grad_rows = grad.permute(0, 2, 3, 1).reshape(b * length, c_out)  # (B*L, C_out), a view
        grad_w = None
        if ctx.needs_input_grad[1]:
            if windows is None:
                windows = _window_rows(x, ctx.padding, k)
            grad_w = (windows.t() @ grad_rows).view(k, c_in, c_out).permute(2, 1, 0).unsqueeze(2)
        grad_bias = grad_rows.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_bias, None, None


class Conv1d(nn.Conv1d):
    """A Conv1d (same parameters, same result) evaluated on (B, C, 1, L) tensors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.unsqueeze(2)
        # The GEMM weight gradient works around oneDNN; GPUs keep their own kernels.
        if self.training and torch.is_grad_enabled() and x.device.type == "cpu":
            return _WindowGemmConv.apply(x, weight, self.bias, self.padding[0], self.in_channels == 1)
        return F.conv2d(x, weight, self.bias, padding=(0, self.padding[0]))


class StemConv1d(Conv1d):
    """The one-input-channel Conv1d of the stem: (B, 1, L) beats -> (B, C, 1, L).

    In CPU training it is a matrix product over k-sample windows (``_WindowGemmConv``),
    which returns channels-last memory. Elsewhere it is the plain 2-D convolution: in eval
    mode the frozen inference graph (engine.freeze_for_cpu) fuses the NCHW trunk best
    (14,300 vs 8,100 beats/s at batch 1,024 on 2 cores).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.unsqueeze(2))


class ResidualBlock(nn.Module):
    """conv k5 -> ReLU -> conv k5 -> add input -> ReLU -> max-pool 5, stride 2."""

    def __init__(self, channels: int = 32, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv1 = Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, L) -> (B, C, 1, (L - 5) // 2 + 1)."""
        y = self.conv2(F.relu(self.conv1(x)))
        if self.training:
            # ReLU commutes with max (values and gradients alike), so in training it runs
            # on the pooled half-length tensor: two fewer full-length passes per block.
            return F.relu(F.max_pool2d(x + y, kernel_size=(1, 5), stride=(1, 2)))
        # Eval keeps the paper's order: the frozen inference graph fuses add + ReLU into the conv.
        return F.max_pool2d(F.relu(x + y), kernel_size=(1, 5), stride=(1, 2))


class ECGNet(nn.Module):
    """Kachuee et al. residual CNN: trunk (conv + 5 residual blocks) and FC head."""

    def __init__(self, n_classes: int = 5, channels: int = 32, n_blocks: int = 5, hidden: int = 32) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.channels = channels
        self.n_blocks = n_blocks
        self.hidden = hidden
        self.stem = StemConv1d(1, channels, kernel_size=5, padding=2)
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(n_blocks)])
        self.num_features = channels * self._trunk_length(BEAT_LENGTH, n_blocks)
        self.head = self._make_head(n_classes)

    @staticmethod
    def _trunk_length(length: int, n_blocks: int) -> int:
        for _ in range(n_blocks):
            length = (length - 5) // 2 + 1  # 187 -> 92 -> 44 -> 20 -> 8 -> 2
        return length

    def _make_head(self, n_classes: int) -> nn.Sequential:
        # The paper's head is FC 32 -> ReLU -> FC 32 -> FC n (softmax in the loss);
        # the three linear layers are what give 55,013 parameters.
        return nn.Sequential(
            nn.Linear(self.num_features, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.Linear(self.hidden, n_classes),
        )

    @property
    def model_args(self) -> dict:
        """Constructor arguments, stored in checkpoints so a model can be rebuilt without a config."""
        return {"n_classes": self.n_classes, "channels": self.channels, "n_blocks": self.n_blocks, "hidden": self.hidden}

    def trunk_parameters(self):
        return [p for m in (self.stem, self.blocks) for p in m.parameters()]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, 187) beats -> (batch, 64) learned representation."""
        # flatten() follows the logical (C, 1, L) order, so features match a Conv1d net's.
        return self.blocks(self.stem(x)).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, n_classes: int) -> None:
        """Replace the whole FC head with a freshly initialised one for ``n_classes``.

        Unlike timm, where only the last layer is the classifier, the paper's transfer
        experiment retrains all three FC layers on top of the frozen conv trunk.
        """
        device = self.stem.weight.device
        self.n_classes = n_classes
        self.head = self._make_head(n_classes).to(device)


def freeze_trunk(model: ECGNet) -> None:
    """Stop gradients through the conv trunk (the transfer setting of the paper)."""
    for p in model.trunk_parameters():
        p.requires_grad_(False)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
