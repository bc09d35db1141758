"""Knowledge distillation (Hinton, Vinyals & Dean 2015): one network trained to give a teacher's probabilities.

A folds' ensemble (``crossval.train_folds``, e.g. the five networks of the shipped ``mitbih-rr-ensemble``) judges new
patients better than any of its members, but costs K networks per beat; labelling a recording is then mostly
their arithmetic. The student is one network of the members' architecture, trained on the same beats with the
ensemble's probabilities as targets (``BeatDataset.targets``, plain cross-entropy), selected on patients it never
saw by the true labels' macro-F1. Given a pool (ensemble x linear rhythm model), the student learns the
ensemble's part, and with ``linear_expert`` it is pooled with a linear model fitted on the training file, as
``train_folds`` pools its ensemble; the pool's temperature is fitted on the student's validation patients.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import Config
from ..constants import TASKS
from ..data.datasets import BeatDataset, Splits, holdout, read_recipe
from ..errors import EcgnetError
from ..models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from ..models.combined import COMBINED
from ..models.fastpath import predict_logits
from ..models.pretrained import resolve_checkpoint
from .assemble import combined_checkpoint, pool_experts
from .crossval import linear_expert, patients_training_file, pool_calibration
from .evaluation import model_inputs
from .reporting import make_run_dir
from .trainer import train

RECIPE_KEYS = ("database", "split", "positions", "unmatched", "before_r_s")  # how beats were cut: teacher and data agree


def teacher_networks(teacher: dict) -> dict:
    """The part of ``teacher`` a student learns: the networks of a pool (its first expert), else the whole model."""
    if teacher.get("model_name") == COMBINED and teacher["model_args"]["rule"] == "product":
        return pool_experts(teacher)[0]
    return teacher


def teacher_probabilities(teacher: dict, data: BeatDataset, source: str) -> torch.Tensor:
    """(n, n_classes) probabilities of ``teacher`` (a checkpoint dict) on ``data``, as it reads them (templates)."""
    model = model_from_checkpoint(teacher).eval()
    inputs = model_inputs(model, data, source)
    with torch.no_grad():
        return predict_logits(model, inputs.x, rhythm=inputs.rhythm).float().softmax(1)


def check_teacher(teacher: dict, recipe: dict, cfg: Config, spec: str) -> None:
    """Refuse, with one line, a teacher of another task or of beats cut another way than the training data."""
    if teacher["task"] != cfg.task:
        raise EcgnetError(f"teacher {spec} is a '{teacher['task']}' model but task is '{cfg.task}'; give a teacher of the same task")
    theirs, ours = ({k: r.get(k) for k in RECIPE_KEYS} for r in (teacher.get("recipe") or {}, recipe))
    if theirs != ours:
        raise EcgnetError(f"teacher {spec} read beats cut as {theirs} but {cfg.data_dir} holds beats cut as {ours}; "
                          "prepare the data with the teacher's recipe (its card's 'recipe') or pick another teacher")


def train_student(cfg: Config, overwrite: bool = False) -> dict:
    """Train one ``cfg.model`` on ``cfg.data_dir``'s training file to reproduce ``cfg.teacher``; returns the summary of
    ``trainer.train`` (run_dir/best.pt is the student, pooled with the linear model when ``cfg.linear_expert``)."""
    task = TASKS[cfg.task]
    data_dir, full = patients_training_file(cfg, "a student is validated on whole patients")
    recipe = read_recipe(data_dir, task)
    teacher = resolve_checkpoint(cfg.teacher)
    check_teacher(teacher, recipe, cfg, cfg.teacher)
    rows = np.arange(len(full))
    train_rows, val_rows = holdout(task, full, rows, cfg.val_fraction, cfg.seed, True, data_dir)
    full.targets = teacher_probabilities(teacher_networks(teacher), full, str(data_dir))
    splits = Splits(full.subset(train_rows), full.subset(val_rows), None, data_dir, None, recipe)
    summary = train(cfg, splits, make_run_dir(cfg, overwrite=overwrite))
    run_dir = summary["run_dir"]
    if cfg.linear_expert:
        student = load_checkpoint(run_dir / "best.pt")
        linear = linear_expert(full, rows, cfg, data_dir, recipe)
        for name, ckpt in (("student.pt", student), ("linear.pt", linear)):
            save_checkpoint(run_dir / name, ckpt)
        pooled = combined_checkpoint([student, linear], [str(run_dir / "student.pt"), str(run_dir / "linear.pt")], "product",
                                     student["split"] | {"teacher": cfg.teacher})
        pooled["config"] = cfg.to_dict()
        calibration = pool_calibration([student], [val_rows], full, rows, cfg, data_dir)
        if calibration is not None:
            pooled["calibration"] = calibration | {"fitted_on": "the student's validation patients (the student pooled with a "
                                                                "linear model fitted on the other training patients)"}
        save_checkpoint(run_dir / "best.pt", pooled)
    return summary
