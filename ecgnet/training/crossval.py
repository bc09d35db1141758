"""Cross-validation over whole records, and per-class decision offsets fitted on its out-of-fold predictions.

With a few dozen patients, one held-out set of records is a noisy judge: the inter-patient
runs selected epochs 1-5 and their S sensitivity spread by +-24 points between seeds.
``record_folds`` gives every record of the training file to validation exactly once, so the
out-of-fold predictions cover all training patients, each predicted by a model that never saw
them. ``fit_class_offsets`` then sets one additive log-probability offset per class on those
predictions, never looking at the test set: a class-weighted model over-calls the rare classes
on new patients. Measured on MIT-BIH DS2 they overshoot on averaged models (docs/experiments.md).
``train_folds`` trains one model per fold and saves them as one model combined by the mean
(``ecgnet.models.combined``): ``folds: K``; with ``linear_expert`` that ensemble is pooled (the product rule)
with the linear rhythm model fitted on the same beats (``ecgnet.models.linear``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..config import Config, config_from_dict
from ..constants import TASKS, Task
from ..data.datasets import BeatDataset, Splits, holdout, load_files, read_recipe, resolve_data_dir
from ..data.prepare import unmatched_label
from ..errors import EcgnetError
from ..metrics import ECE_BINS, expected_calibration_error, macro_f1
from ..models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from ..models.fastpath import predict_logits
from ..models.linear import fit_linear
from ..signals.records import patients_of
from .assemble import combined_checkpoint, linear_checkpoint
from .calibration import fit_temperature
from .evaluation import model_inputs
from .reporting import make_run_dir
from .trainer import train

log = logging.getLogger(__name__)

PLACE = ("log_dir", "run_name", "val_fraction")  # where a member was written; folds, not val_fraction, pick its validation

OFFSET_GRID = np.linspace(-6.0, 6.0, 121)  # log-probability offsets tried per class (0.1 apart)
OFFSET_ROUNDS = 3                           # coordinate-ascent passes over the classes


def record_folds(records: np.ndarray, labels: np.ndarray, k: int, seed: int,
                 required: tuple[int, ...] = ()) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_rows, val_rows) pairs by whole records; each record is in exactly one val fold.

    Records are dealt rarest-class-first to the fold that holds the least of the classes
    they carry, so that each fold's validation records hold beats of every class in ``required``.
    The seed only orders records of equal share: on MIT-BIH DS1 every seed gives the same folds,
    and seeds differ in the members' initialisation and batch order.
    """
    records = np.asarray(records).astype(str)
    names = np.unique(records)
    if not 2 <= k <= len(names):
        raise EcgnetError(f"cross-validation needs 2 <= folds <= {len(names)} records, got {k}")
    counts = np.array([[((records == r) & (labels == c)).sum() for c in required] for r in names]).reshape(len(names), -1)
    totals = np.maximum(counts.sum(0), 1)
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-(counts[order] / totals).sum(1), kind="stable")]
    held = np.zeros((k, counts.shape[1]))
    fold_of = np.empty(len(names), int)
    sizes = np.zeros(k, int)
    for i in order:
        share = counts[i] / totals
        cost = (held + share).max(1) + 1e-3 * sizes  # the fold whose largest class share stays smallest
        fold_of[i] = int(np.argmin(cost))
        held[fold_of[i]] += share
        sizes[fold_of[i]] += 1
    folds = []
    for f in range(k):
        val = np.isin(records, names[fold_of == f])
        missing = [c for c in required if not (labels[val] == c).any()]
        if missing:
            raise EcgnetError(f"cross-validation fold {f + 1} of {k} holds no beat of class(es) {missing}; use fewer folds")
        folds.append((np.flatnonzero(~val), np.flatnonzero(val)))
    return folds


def fit_class_offsets(log_probs: np.ndarray, labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """Additive offsets (n_classes,) for ``log_probs`` that maximise macro-F1 over ``classes`` (coordinate ascent).

    The first of ``classes`` is the reference (offset 0); classes not listed keep 0.
    Ties keep the offset nearest 0, so a class without evidence is left alone.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    offsets = np.zeros(log_probs.shape[1])
    best = macro_f1(labels, log_probs.argmax(1), classes)
    by_size = OFFSET_GRID[np.argsort(np.abs(OFFSET_GRID), kind="stable")]
    for _ in range(OFFSET_ROUNDS):
        before = best
        for c in classes[1:]:
            trial = offsets.copy()
            for value in by_size:
                trial[c] = value
                score = macro_f1(labels, (log_probs + trial).argmax(1), classes)
                if score > best + 1e-12:
                    best, offsets[c] = score, value
        if best <= before:
            break
    return offsets


def train_folds(cfg: Config, k: int, reuse: bool = False, overwrite: bool = False) -> dict:
    """Train ``cfg`` once per fold of whole patients (``record_folds``) and save the folds' ensemble.

    Members are runs of their own in log_dir/run_name/fold<F> (validation: the fold's
    patients); their ensemble is log_dir/run_name/best.pt. With ``reuse`` a member that
    finished training with the same config on the same fold is kept, not retrained.
    Returns run_dir, the members' checkpoints and each fold's validation rows (indices into
    the task's training files).
    """
    task = TASKS[cfg.task]
    data_dir, full = patients_training_file(cfg, "folds take whole patients")
    if cfg.linear_expert and not full.has_rhythm:
        raise EcgnetError(f"{data_dir}: linear_expert reads each beat's rhythm, which these beats do not carry; "
                          "prepare the data with 'ecgnet prepare mitdb' or set linear_expert=false")
    rows, test_rows = np.arange(len(full)), None
    if not task.test_stems:
        rows, test_rows = holdout(task, full, rows, cfg.test_fraction, cfg.seed, True, data_dir)
    folds = [(rows[a], rows[b]) for a, b in record_folds(patients_of(full.records[rows]), full.y.numpy()[rows], k, cfg.seed,
                                                         task.holdout_classes)]
    run_dir = make_run_dir(cfg, overwrite=reuse or overwrite)
    members, sources = [], []
    for f, (train_rows, val_rows) in enumerate(folds):
        member = config_from_dict({"log_dir": str(run_dir), "run_name": f"fold{f}", "split_by": "patients", "folds": 0, "linear_expert": False},
                                  base=cfg)
        splits = Splits(full.subset(train_rows), full.subset(val_rows), None, data_dir, test_rows, read_recipe(data_dir, task))
        members.append(train_member(member, splits, reuse))
        sources.append(str(run_dir / member.run_name / "best.pt"))
    split = {"data_dir": str(data_dir), "seed": cfg.seed, "split_by": "patients", "folds": k, "test_fraction": cfg.test_fraction,
             "val_records": [m["split"]["val_records"] for m in members], "n_train": len(rows), "n_val": 0,
             "test_indices": None if test_rows is None else test_rows.tolist()}
    best = combined_checkpoint(members, sources, "mean", split)
    if cfg.linear_expert:  # the folds' ensemble pooled with a linear model fitted on their beats that match annotated ones
        linear = linear_expert(full, rows, cfg, data_dir, read_recipe(data_dir, task))
        for name, ckpt in (("ensemble.pt", best), ("linear.pt", linear)):
            save_checkpoint(run_dir / name, ckpt)
        best = combined_checkpoint([best, linear], [str(run_dir / "ensemble.pt"), str(run_dir / "linear.pt")], "product", split)
        best["config"] = cfg.to_dict()  # the run's own, with linear_expert, not its first member's
        best["calibration"] = pool_calibration(members, [v for _, v in folds], full, rows, cfg, data_dir) or best["calibration"]
    save_checkpoint(run_dir / "best.pt", best)
    return {"run_dir": run_dir, "members": members, "val_rows": [v for _, v in folds]}


def patients_training_file(cfg: Config, why: str) -> tuple[Path, BeatDataset]:
    """``cfg``'s data folder and its training file, whose beats must name their record (``why`` says what needs it)."""
    task = TASKS[cfg.task]
    data_dir = resolve_data_dir(cfg.data_dir, task)
    full = load_files(data_dir, task.train_stems, task)
    if full.records is None:
        raise EcgnetError(f"{data_dir}: {why}, which needs the record of each beat (<stem>_index.csv, written by "
                          "'ecgnet prepare'); the Kaggle CSVs carry none")
    return data_dir, full


def matched_rows(data: BeatDataset, rows: np.ndarray, recipe: dict, task: Task) -> np.ndarray:
    """The ``rows`` of ``data`` the linear expert is fitted on: all but the detections that match no annotated beat
    (labelled by ``prepare --unmatched q``). Their R-R intervals are the detector's artefacts, short like a premature
    beat's; fitted on them the linear model takes S beats for them (MIT-BIH DS2: S Se 78 -> 67, docs/experiments.md).
    The network still learns them, so the pooled model calls spurious detections Q."""
    label = unmatched_label(recipe, task)
    return rows if label < 0 else rows[data.y.numpy()[rows] != label]


def linear_expert(data: BeatDataset, rows: np.ndarray, cfg: Config, data_dir: Path, recipe: dict) -> dict:
    """The checkpoint dict of the linear model fitted on the ``matched_rows`` of ``rows`` of ``data`` (beats cut by
    ``recipe`` in ``data_dir``), the expert ``linear_expert`` pools the folds' ensemble with."""
    fitted_rows = matched_rows(data, rows, recipe, TASKS[cfg.task])
    return linear_checkpoint(fit_linear(data.subset(fitted_rows)), cfg, data_dir, recipe, len(fitted_rows))


def pool_calibration(members: list[dict], val_rows: list[np.ndarray], full: BeatDataset, rows: np.ndarray, cfg: Config,
                     data_dir: Path) -> dict | None:
    """The calibration of the folds' pool, fitted on out-of-fold predictions: each fold's member pooled (product rule)
    with a linear model fitted on the other folds' beats, on the fold's own patients, so that every training patient is
    judged by a pool that never saw it. Class weights make the pool under-confident on new patients (most beats are N,
    called at 0.7-0.9); one temperature fitted here is what ``--min-confidence`` and the probabilities then use.
    None (the pool stays uncalibrated, with a warning) when the other folds of some fold cannot fit the linear model."""
    logits, labels = [], []
    for f, (member, held) in enumerate(zip(members, val_rows)):
        try:
            linear = linear_expert(full, np.setdiff1d(rows, held), cfg, data_dir, member["recipe"])
        except EcgnetError as e:
            log.warning("the pool keeps temperature 1: without fold %d's patients %s", f + 1, e)
            return None
        pool = model_from_checkpoint(combined_checkpoint([member, linear], [f"fold{f}", "linear"], "product")).eval()
        data = model_inputs(pool, full.subset(held), str(data_dir))
        logits.append(predict_logits(pool, data.x, rhythm=data.rhythm))
        labels.append(data.y)
    logits, labels = torch.cat(logits), torch.cat(labels)
    temperature = fit_temperature(logits, labels)
    ece = [expected_calibration_error((logits / t).softmax(1).numpy(), labels.numpy()) for t in (1.0, temperature)]
    return {"temperature": temperature, "bins": ECE_BINS, "ece_out_of_fold_uncalibrated": ece[0], "ece_out_of_fold": ece[1],
            "fitted_on": "the out-of-fold predictions of the training patients (each fold's member pooled with a linear model "
                         "fitted on the other folds)"}


def train_member(cfg: Config, splits: Splits, reuse: bool) -> dict:
    """One fold's best checkpoint: trained now, or (``reuse``) an earlier one of the same config and fold."""
    run_dir = Path(cfg.log_dir) / cfg.run_name
    if reuse and (run_dir / "last.pt").exists():
        last = load_checkpoint(run_dir / "last.pt")
        state = last["train_state"]
        finished = state["epoch"] >= cfg.epochs or 0 < cfg.patience <= state["epochs_without_improvement"]
        # a key added to Config since the member was trained counts as its default
        trained_with = Config().to_dict() | last["config"]
        same = {k: v for k, v in trained_with.items() if k not in PLACE} == {k: v for k, v in cfg.to_dict().items() if k not in PLACE}
        if finished and same and last["split"]["val_records"] == sorted(set(splits.val.records.tolist())):
            return load_checkpoint(run_dir / "best.pt")
    train(cfg, splits, make_run_dir(cfg, overwrite=True))
    return load_checkpoint(run_dir / "best.pt")
