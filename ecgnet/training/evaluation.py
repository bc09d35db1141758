"""Evaluation: logits in batches, metrics of a model on a dataset, and of a checkpoint on its test set.

Nothing here writes files; ``ecgnet.training.reporting`` does.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..constants import TASKS
from ..data.datasets import PAPER_RECIPE, BeatDataset, Splits, load_test_set, read_recipe, resolve_data_dir
from ..errors import EcgnetError
from ..metrics import classification_metrics
from ..models.checkpoint import model_from_checkpoint, temperature_of
from ..models.fastpath import FROZEN_CHUNK, FROZEN_MIN_BEATS
from ..models.model import ECGNet
from ..models.pretrained import resolve_checkpoint
from ..runtime import autocast, select_device
from ..signals.fibrillation import gate_premature
from .calibration import calibration_report, fit_temperature
from .loss import BeatLoss


def _chunks(x: torch.Tensor, rhythm: torch.Tensor | None, size: int):
    """(beats, rhythm) chunks of ``size``; rhythm chunks are None when there is no rhythm."""
    parts = rhythm.split(size) if rhythm is not None else [None] * len(x.split(size))
    return zip(x.split(size), parts)


@torch.inference_mode()
def predict_logits(model: ECGNet, x: torch.Tensor, batch_size: int = 1024, device: torch.device | None = None,
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


def model_inputs(model: ECGNet, data: BeatDataset, source: str) -> BeatDataset:
    """``data`` as ``model`` reads it: with record templates for a template model (``ecgnet.signals.template``). A rhythm
    model needs the rhythm features, a template model the records, that only prepared mitdb data carries."""
    if model.rhythm_dim and not data.has_rhythm:
        raise EcgnetError(f"{source}: this model takes rhythm features (model 'kachuee_rr'), but the beats carry none: "
                          "the Kaggle CSVs hold single beats without rhythm. Build the data with 'ecgnet prepare mitdb' "
                          "(its *_index.csv holds the rhythm), or use model 'kachuee'")
    return data.with_templates(source) if model.template else data


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


def checkpoint_test_set(ckpt: dict, data_dir: str | Path | None, source: str) -> tuple[BeatDataset, Path]:
    """The held-out test beats of a checkpoint's task: the test file, or the recorded test split."""
    task = TASKS.get(ckpt.get("task"))
    if task is None:
        raise EcgnetError(f"{source}: unknown task {ckpt.get('task')!r}")
    split = ckpt["split"]
    folder = resolve_data_dir(data_dir or split["data_dir"], task)
    trained, found = ckpt.get("recipe", PAPER_RECIPE)["before_r_s"], read_recipe(folder, task)["before_r_s"]
    if trained != found:
        raise EcgnetError(f"{source} was trained on beats starting {trained} s before R, but the beats in {folder} start "
                          f"{found} s before R; test it on data prepared the same way")
    indices = split.get("test_indices")
    expected = None if indices is None else split["n_train"] + split["n_val"] + len(indices)
    return load_test_set(task, folder, None if indices is None else np.asarray(indices),
                         expected_rows=expected, source=source), folder


def model_splits(model: ECGNet, splits: Splits, store: str = "") -> Splits:
    """``splits`` as ``model`` reads them (``model_inputs``); a template model trains on resident data."""
    source = str(splits.data_dir)
    if model.template and store:
        raise EcgnetError(f"{store}: this model (kachuee_rrt) compares each beat with its record's template, which a store does "
                          "not hold; train it on resident data (unset 'store')")
    return replace(splits, train=model_inputs(model, splits.train, source), val=model_inputs(model, splits.val, source),
                   test=None if splits.test is None else model_inputs(model, splits.test, source))


def evaluate(checkpoint: str | Path, data_dir: str | Path | None = None, device: str = "auto", batch_size: int = 1024) -> dict:
    """Metrics of a checkpoint on its task's test set (accuracy, macro-F1, per class, confusion matrix)."""
    ckpt = resolve_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, str(checkpoint))
    dev = select_device(device)
    test_set, folder = checkpoint_test_set(ckpt, data_dir, str(checkpoint))
    test_set = model_inputs(model, test_set, str(checkpoint))
    logits = predict_logits(model.to(dev), test_set.x, batch_size, dev, rhythm=test_set.rhythm)
    gate = rhythm_gate(model, test_set)
    metrics = metrics_from_logits(logits, test_set, temperature=temperature_of(ckpt), adjust=gate)
    metrics["calibration"] = calibration_report(logits, test_set.y, temperature_of(ckpt), adjust=gate)
    metrics.update(checkpoint=str(checkpoint), data_dir=str(folder), task=ckpt["task"], epoch=ckpt["epoch"],
                   irregular_rhythm_share=None if gate is None else float(test_set.irregular.mean()))
    return metrics


def rhythm_gate(model: ECGNet, data: BeatDataset) -> Callable[[np.ndarray], np.ndarray] | None:
    """For a rhythm model on beats whose rhythm is known: S calls in irregular rhythm made N, as ``predict --record``
    labels (``ecgnet.signals.fibrillation``); None otherwise (a beat model is scored on its own output)."""
    if not model.rhythm_dim or data.irregular is None:
        return None
    return lambda probs: gate_premature(probs, data.irregular, data.class_names)
