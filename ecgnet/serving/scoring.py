"""Scoring a checkpoint on its task's test set as users get its labels: the same ``Predictor`` and beat context
(``ecgnet.signals.context``) as ``predict --record``, so a rhythm-aware recording is scored with its
irregular-rhythm rule. Nothing here writes files; ``ecgnet.training.reporting`` does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import TASKS
from ..data.datasets import PAPER_RECIPE, BeatDataset, load_test_set, read_recipe, resolve_data_dir
from ..errors import EcgnetError
from ..models.checkpoint import temperature_of
from ..models.pretrained import resolve_checkpoint
from ..training.calibration import calibration_report
from ..training.evaluation import check_model_inputs, metrics_from_logits
from .inference import Predictor


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


def evaluate(checkpoint: str | Path, data_dir: str | Path | None = None, device: str = "auto", batch_size: int = 1024) -> dict:
    """Metrics of a checkpoint on its task's test set (accuracy, macro-F1, per class, confusion matrix, calibration),
    its beats labelled as ``predict --record`` labels them: S calls in irregular rhythm made N when the test data
    carries each beat's rhythm (``irregular_rhythm_share``: the share of such beats, None without rhythm)."""
    ckpt = resolve_checkpoint(checkpoint)
    predictor = Predictor(ckpt, device, batch_size, fast=False, source=str(checkpoint))  # eager: the figures' arithmetic
    test_set, folder = checkpoint_test_set(ckpt, data_dir, str(checkpoint))
    check_model_inputs(predictor.model, test_set, str(checkpoint))
    context = test_set.context()
    logits = predictor.logits(context)
    answer = lambda probs: context.answer(probs, predictor.class_names)  # noqa: E731
    metrics = metrics_from_logits(logits, test_set, temperature=temperature_of(ckpt), adjust=answer)
    metrics["calibration"] = calibration_report(logits, test_set.y, temperature_of(ckpt), adjust=answer)
    metrics.update(checkpoint=str(checkpoint), data_dir=str(folder), task=ckpt["task"], epoch=ckpt["epoch"],
                   irregular_rhythm_share=None if context.irregular is None else float(context.irregular.mean()))
    return metrics


def evaluate_record_model(checkpoint: str | Path, data_dir: str | Path | None = None) -> dict:
    """A record-level model (``ptbxl-mi``) on PTB-XL's test fold, at the thresholds it ships with: per lead set, ROC AUC,
    sensitivity, specificity and PPV per record and per patient, and the sensitivity per MI location."""
    from ..constants import RHYTHM_LEAD
    from ..data.ptbxl import load_ptbxl
    from ..training.record_training import figures, p_mi
    from .diagnosis import RecordPredictor

    ckpt = resolve_checkpoint(checkpoint)
    folder = Path(data_dir or ckpt["split"]["data_dir"])
    test = load_ptbxl(folder).split("test")
    if len(set(test.labels)) < 2:
        raise EcgnetError(f"{folder}: the test fold (9) needs MI and NORM records; prepare PTB-XL with 'ecgnet prepare ptbxl'")
    predictor = RecordPredictor(ckpt, str(checkpoint))
    leads = {"12 leads": None, "lead II": (RHYTHM_LEAD,)}
    results = {name: figures(p_mi(predictor.model, test, leads[name]), test, threshold) for name, threshold in predictor.thresholds.items()}
    return {"checkpoint": str(checkpoint), "data_dir": str(folder), "task": ckpt["task"], "epoch": ckpt["epoch"],
            "n": int(len(test.labels)), "figures": results}
