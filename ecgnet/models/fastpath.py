"""CPU fast paths for ECGNet: the same arithmetic as ``model.py``, arranged for oneDNN's fastest kernels.

Two paths, each applied by its caller and each tested against the plain model
(tests/test_fastpath.py):

- Training (``CPUForward`` in train mode): the trunk runs on (B, C, 1, L) tensors in
  channels-last memory, each Conv1d as a (1, k) 2-D convolution whose weight gradient is
  one matrix product over the input windows, and each block pools before its ReLU
  (ReLU commutes with max, values and gradients alike, and runs on half the samples).
- Inference (``freeze_for_cpu``): a traced, frozen graph of the 2-D layout, where
  oneDNN folds biases and fuses conv + add + ReLU; ``predict_logits`` runs a model over beats in
  batches, through that graph when one is given.

bench/train_throughput.py and bench/inference.py measure each against the plain path.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import BEAT_LENGTH
from ..runtime import autocast
from .linear import RhythmLinear
from .model import BeatClassifier, ECGNet

FROZEN_MIN_BEATS = 64   # below this, the eager model answers sooner
FROZEN_CHUNK = 256      # the batch the frozen graph is traced and run at


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
    weight gradient is one matrix product of the input windows and the output gradient.

    oneDNN runs this net's forward and input-gradient convolutions near the CPU's GEMM
    peak but its weight gradient several times slower; as a product over the windows the
    weight gradient runs at GEMM speed. With ``gemm_forward`` the forward is a product
    over the windows too: the stem's path, because a one-channel 2-D convolution emits
    NCHW memory, which would turn every later layer NCHW.
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


def _conv(x: torch.Tensor, conv: nn.Conv1d, training: bool) -> torch.Tensor:
    """``conv`` applied to (B, C, 1, L) ``x`` as a (1, k) 2-D convolution."""
    weight = conv.weight.unsqueeze(2)
    if training:
        return _WindowGemmConv.apply(x, weight, conv.bias, conv.padding[0], conv.in_channels == 1)
    return F.conv2d(x, weight, conv.bias, padding=(0, conv.padding[0]))


def _features(net: ECGNet, x: torch.Tensor, rhythm: torch.Tensor | None, training: bool) -> torch.Tensor:
    """``net.forward_features`` in the 2-D layout."""
    h = _conv(net.stem_input(x).unsqueeze(2), net.stem, training)
    for block in net.blocks:
        y = _conv(F.relu(_conv(h, block.conv1, training)), block.conv2, training)
        if training:
            h = F.relu(F.max_pool2d(h + y, kernel_size=(1, 5), stride=(1, 2)))
        else:
            h = F.max_pool2d(F.relu(h + y), kernel_size=(1, 5), stride=(1, 2))
    return net.join_rhythm(h.flatten(1), rhythm)  # flatten follows the logical (C, 1, L) order


def uses_cpu_fast_path(model: BeatClassifier) -> bool:
    """Whether this module applies to ``model``: the paper's conv layout, alone or combined with more of it and with
    the linear model (which runs as it is)."""
    if isinstance(model, ECGNet):
        return True
    parts = model.submodels()
    return bool(parts) and all(uses_cpu_fast_path(m) or isinstance(m, RhythmLinear) for m in parts)


def _logits(net: BeatClassifier, x: torch.Tensor, rhythm: torch.Tensor | None, training: bool) -> torch.Tensor:
    """``net``'s logits with every ECGNet in it on the 2-D layout."""
    if isinstance(net, ECGNet):
        return net.forward_head(_features(net, x, rhythm, training))
    return net.forward_with(x, rhythm, run=lambda m, x, r: _logits(m, x, r, training))


class CPUForward(nn.Module):
    """The forward of an ECGNet (or a model combining them) in the 2-D layout; shares ``net``'s parameters.

    Follows ``net``'s train/eval mode. Off the CPU, or without gradients in train mode,
    it is ``net``'s own forward.
    """

    def __init__(self, net: BeatClassifier) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        net = self.net
        training = net.training and torch.is_grad_enabled()
        if x.device.type != "cpu" or (net.training and not training):
            return net(x, rhythm)
        return _logits(net, x, rhythm, training)


def freeze_for_cpu(model: BeatClassifier) -> torch.jit.ScriptModule:
    """A traced, frozen copy of ``model`` in the 2-D layout, for CPU inference.

    TorchScript is in maintenance mode upstream but is still the path whose freezing
    fuses these convolutions on CPU (bench/inference.py measures it against eager);
    building the graph takes about a second.
    """
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's maintenance-mode notices
        example = (torch.rand(FROZEN_CHUNK, 2 if model.template else 1, BEAT_LENGTH),)
        if model.rhythm_dim:
            example += (torch.rand(FROZEN_CHUNK, model.rhythm_dim),)
        traced = torch.jit.trace(CPUForward(model).eval(), example)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def _chunks(x: torch.Tensor, rhythm: torch.Tensor | None, size: int):
    """(beats, rhythm) chunks of ``size``; rhythm chunks are None when there is no rhythm."""
    parts = rhythm.split(size) if rhythm is not None else [None] * len(x.split(size))
    return zip(x.split(size), parts)


@torch.inference_mode()
def predict_logits(model: BeatClassifier, x: torch.Tensor, batch_size: int = 1024, device: torch.device | None = None,
                   amp: bool = True, frozen: torch.jit.ScriptModule | None = None, rhythm: torch.Tensor | None = None) -> torch.Tensor:
    """Logits for beats x (n, 1, 187) [and rhythm inputs (n, k)] in eval mode, in batches; float32 on CPU.

    With ``frozen`` (``fastpath.freeze_for_cpu``) CPU inputs of 64 beats or more run
    through the frozen graph in chunks of 256; fewer beats run eagerly (lower latency).
    """
    device = device or next(model.parameters()).device
    model.eval()
    rhythm = rhythm if model.rhythm_dim else None
    if frozen is not None and device.type == "cpu" and len(x) >= FROZEN_MIN_BEATS:
        return torch.cat([frozen(*(t for t in chunk if t is not None)) for chunk in _chunks(x, rhythm, FROZEN_CHUNK)])
    if len(x) <= batch_size and device.type == "cpu":
        return model(x, rhythm)  # one batch: no copies, no autocast context (single-beat latency)
    out = []
    for xb, rb in _chunks(x, rhythm, batch_size):
        with autocast(device, amp):
            out.append(model(xb.to(device, non_blocking=True), None if rb is None else rb.to(device)).float())
    return torch.cat(out).cpu() if out else torch.empty(0, model.n_classes)
