"""Evaluation during training: metrics of a model on a dataset (validation), the calibration temperature of a
checkpoint, and datasets as a model reads them (record templates). A checkpoint on its test set, labelled as
users get it, is ``ecgnet.serving.scoring``. Nothing here writes files; ``ecgnet.training.reporting`` does.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from ..data.datasets import BeatDataset, Splits
from ..errors import EcgnetError
from ..metrics import classification_metrics
from ..models.checkpoint import model_from_checkpoint
from ..models.fastpath import predict_logits
from ..models.model import ECGNet
from .calibration import calibration_report, fit_temperature
from .loss import BeatLoss


def model_inputs(model: ECGNet, data: BeatDataset, source: str) -> BeatDataset:
    """``data`` as ``model`` reads it: with record templates for a template model (``ecgnet.signals.template``). A rhythm
    model needs the rhythm features, a template model the records, that only prepared mitdb data carries."""
    check_model_inputs(model, data, source)
    return data.with_templates(source) if model.template else data


def check_model_inputs(model: ECGNet, data: BeatDataset, source: str) -> None:
    """Refuse, with one line, beats that lack what ``model`` reads beside them: rhythm features, or each beat's record."""
    if model.rhythm_dim and not data.has_rhythm:
        raise EcgnetError(f"{source}: this model takes rhythm features (model 'kachuee_rr'), but the beats carry none: "
                          "the Kaggle CSVs hold single beats without rhythm. Build the data with 'ecgnet prepare mitdb' "
                          "(its *_index.csv holds the rhythm), or use model 'kachuee'")
    if model.template:
        data.check_records(source)


def metrics_from_logits(logits: torch.Tensor, data: BeatDataset, loss_fn: BeatLoss = BeatLoss(),
                        temperature: float = 1.0, adjust: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """Classification metrics of ``softmax(logits / temperature)`` (then ``adjust``-ed, probabilities to
    probabilities) on ``data`` plus the mean loss of the logits (``loss_fn``: the training loss; plain
    cross-entropy by default)."""
    probs = (adjust or (lambda p: p))((logits / temperature).softmax(1).numpy())
    metrics = classification_metrics(data.y.numpy(), probs.argmax(1), data.class_names, probs)
    metrics["loss"] = float(loss_fn(logits, data.y))
    return metrics


def evaluate_model(model: ECGNet, data: BeatDataset, batch_size: int = 1024, device: torch.device | None = None,
                   amp: bool = True, loss_fn: BeatLoss = BeatLoss()) -> dict:
    """Metrics of ``model`` on ``data`` plus the mean loss (``loss_fn``; plain cross-entropy by default)."""
    return metrics_from_logits(predict_logits(model, data.x, batch_size, device, amp, rhythm=data.rhythm), data, loss_fn)


def calibrate(ckpt: dict, val: BeatDataset, device: torch.device | None = None, batch_size: int = 1024) -> dict:
    """Temperature scaling of a checkpoint's weights on its validation beats: the ``calibration`` entry it stores."""
    model = model_from_checkpoint(ckpt)
    device = device or torch.device("cpu")
    logits = predict_logits(model.to(device), val.x, batch_size, device, rhythm=val.rhythm)
    temperature = fit_temperature(logits, val.y)
    report = calibration_report(logits, val.y, temperature)
    return {"temperature": temperature, "fitted_on": "validation", "bins": report["bins"], "n": len(val),
            "val_ece_uncalibrated": report["ece_uncalibrated"], "val_ece": report["ece"]}


def model_splits(model: ECGNet, splits: Splits, store: str = "") -> Splits:
    """``splits`` as ``model`` reads them (``model_inputs``); a template model trains on resident data."""
    source = str(splits.data_dir)
    if model.template and store:
        raise EcgnetError(f"{store}: this model (kachuee_rrt) compares each beat with its record's template, which a store does "
                          "not hold; train it on resident data (unset 'store')")
    return replace(splits, train=model_inputs(model, splits.train, source), val=model_inputs(model, splits.val, source),
                   test=None if splits.test is None else model_inputs(model, splits.test, source))
