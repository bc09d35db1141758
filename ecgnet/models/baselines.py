"""Other published architectures for 187-sample beats, with the paper's net's interface.

- ``CNNLSTM`` (``cnn_lstm``): two convolution layers, then an LSTM over the pooled
  sequence, as in the common Keras implementations of this task (Conv1D 64 k5 -> pool
  -> Conv1D 64 k5 -> pool -> LSTM 64 -> dense).
- ``GRUNet`` (``gru``): a plain recurrent baseline, a 2-layer GRU over the beat read in
  frames of 4 samples (47 steps: a GRU over 187 single samples learns slowly and runs
  47x sequentially on a CPU).
- ``CNNBiLSTMAttention`` (``cnn_bilstm_attn``): convolution blocks with batch norm, a
  bidirectional LSTM and additive attention pooling over time, the family of the best
  published results on these beats (e.g. a 2.65 M-parameter CNN-BiLSTM-attention net at
  99.0% accuracy / 0.940 macro-F1; this one is smaller by default, ``width`` scales it).

Every model splits into a trunk (``forward_features``) and a head (``forward_head``),
``reset_classifier(n)`` replaces the head, and ``model_args`` rebuilds it from a
checkpoint, so transfer to PTB works for each (``ecgnet.models.registry``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import BEAT_LENGTH
from .model import BeatClassifier
from .registry import register_model


class DenseHead(BeatClassifier):
    """A recurrent model's head: dropout -> FC ``head_hidden`` -> ReLU -> FC n_classes on ``num_features``."""

    num_features: int
    head_hidden: int
    dropout: float

    def _make_head(self, n_classes: int) -> nn.Sequential:
        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(self.num_features, self.head_hidden), nn.ReLU(),
                             nn.Linear(self.head_hidden, n_classes))


@register_model("cnn_lstm")          # two convolutions + LSTM
class CNNLSTM(DenseHead):
    """Conv1d 64 k5 -> ReLU -> pool 2 -> Conv1d 64 k5 -> ReLU -> pool 2 -> LSTM(hidden) -> last state -> FC."""

    def __init__(self, n_classes: int = 5, channels: int = 64, hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__(n_classes, {"channels": channels, "hidden": hidden, "dropout": dropout})
        self.conv1 = nn.Conv1d(1, channels, 5, padding=2)
        self.conv2 = nn.Conv1d(channels, channels, 5, padding=2)
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.num_features, self.head_hidden, self.dropout = hidden, hidden, dropout
        self.head = self._make_head(n_classes)

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        h = F.max_pool1d(F.relu(self.conv2(F.max_pool1d(F.relu(self.conv1(x)), 2))), 2)
        _, (last, _) = self.lstm(h.transpose(1, 2))
        return last[-1]


@register_model("gru")               # a recurrent baseline
class GRUNet(DenseHead):
    """A 2-layer GRU over frames of ``frame`` samples (the beat zero-padded to a whole number of frames)."""

    def __init__(self, n_classes: int = 5, hidden: int = 64, layers: int = 2, frame: int = 4, dropout: float = 0.2) -> None:
        super().__init__(n_classes, {"hidden": hidden, "layers": layers, "frame": frame, "dropout": dropout})
        self.frame = frame
        self.gru = nn.GRU(frame, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.num_features, self.head_hidden, self.dropout = hidden, hidden, dropout
        self.head = self._make_head(n_classes)

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        pad = -BEAT_LENGTH % self.frame
        frames = F.pad(x[:, 0], (0, pad)).reshape(len(x), -1, self.frame)
        _, last = self.gru(frames)
        return last[-1]


class ConvBlock(nn.Sequential):
    """Conv1d k5 -> batch norm -> ReLU -> max-pool 2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Conv1d(c_in, c_out, 5, padding=2, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(2))


@register_model("cnn_bilstm_attn")   # conv blocks + BiLSTM + attention pooling
class CNNBiLSTMAttention(DenseHead):
    """3 conv blocks (width, 2 width, 2 width) -> BiLSTM(2 width per direction) -> additive attention pooling -> FC."""

    def __init__(self, n_classes: int = 5, width: int = 64, dropout: float = 0.3) -> None:
        super().__init__(n_classes, {"width": width, "dropout": dropout})
        self.convs = nn.Sequential(ConvBlock(1, width), ConvBlock(width, 2 * width), ConvBlock(2 * width, 2 * width))
        self.lstm = nn.LSTM(2 * width, 2 * width, batch_first=True, bidirectional=True)
        self.score = nn.Sequential(nn.Linear(4 * width, 2 * width), nn.Tanh(), nn.Linear(2 * width, 1, bias=False))
        self.num_features, self.head_hidden, self.dropout = 4 * width, 2 * width, dropout
        self.head = self._make_head(n_classes)

    def forward_features(self, x: torch.Tensor, rhythm: torch.Tensor | None = None) -> torch.Tensor:
        sequence, _ = self.lstm(self.convs(x).transpose(1, 2))        # (batch, time, 4 width)
        weights = self.score(sequence).softmax(dim=1)                  # (batch, time, 1): where the beat is read
        return (weights * sequence).sum(dim=1)
