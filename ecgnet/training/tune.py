"""Hyper-parameter search with Optuna: TPE sampling, median pruning on each epoch's validation macro-F1.

A study lives in SQLite (``<log_dir>/tune/<study>.db``): a killed study resumes where it
stopped, and several processes started on the same study share its trials (each trial
sends a heartbeat; a trial whose process died is marked failed and does not count).
Trials train on the training split and are scored on the validation split only: the
test file is never read. Each trial is a run directory (TensorBoard with its
hyper-parameters) under ``<log_dir>/tune/<study>/``.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import optuna
from matplotlib.figure import Figure

from ..atomic import write_text
from ..config import KEYS, Config, config_from_dict
from ..constants import TASKS
from ..data.datasets import Splits, load_splits, resolve_data_dir
from ..errors import EcgnetError
from .reporting import TensorBoardLogger
from .trainer import train

log = logging.getLogger(__name__)

KINDS = ("float", "int", "categorical")
COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def load_space(path: str | Path) -> dict:
    """The search space file: {config key: {"type": float|int|categorical, "low"/"high"[/"log"] or "choices"}}."""
    path = Path(path)
    try:
        space = json.loads(path.read_text())
    except FileNotFoundError:
        raise EcgnetError(f"search space {path} not found; pass a JSON file with --space (e.g. config/tune_space.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EcgnetError(f"search space {path}: unreadable JSON ({e.__class__.__name__}); fix the file") from None
    if not isinstance(space, dict) or not space:
        raise EcgnetError(f"search space {path}: expected a JSON object of config keys")
    for key, spec in space.items():
        where = f"search space {path}, key '{key}'"
        if key not in KEYS:
            raise EcgnetError(f"{where}: not a config key (config/README.md lists them)")
        if not isinstance(spec, dict) or spec.get("type") not in KINDS:
            raise EcgnetError(f"{where}: needs \"type\": one of {', '.join(KINDS)}")
        if spec["type"] == "categorical" and not (isinstance(spec.get("choices"), list) and spec["choices"]):
            raise EcgnetError(f"{where}: a categorical key needs a non-empty \"choices\" list")
        if spec["type"] != "categorical" and not (isinstance(spec.get("low"), (int, float)) and isinstance(spec.get("high"), (int, float))
                                                  and spec["low"] < spec["high"]):
            raise EcgnetError(f"{where}: needs numbers \"low\" < \"high\"")
    return space


def suggest(trial: optuna.Trial, space: dict) -> dict:
    """One trial's config overrides drawn from ``space``."""
    values = {}
    for key, spec in space.items():
        if spec["type"] == "categorical":
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec["type"] == "int":
            values[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            values[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return values


def base_values(base: Config, space: dict) -> dict:
    """The base config's values of the searched keys that lie in ``space``: the study's first trial, its baseline."""
    values = {}
    for key, spec in space.items():
        value = getattr(base, key)
        inside = value in spec["choices"] if spec["type"] == "categorical" else spec["low"] <= value <= spec["high"]
        if inside:
            values[key] = value
    return values


def open_study(name: str, folder: Path, seed: int, epochs: int = 3) -> optuna.Study:
    """The study ``name`` in ``folder/name.db`` (created on first use): TPE sampler, median pruner.

    The pruner first judges a trial after a third of its ``epochs`` (at least 2): on the first
    epoch's score alone, slow starters (weight averaging, augmentation) were pruned.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are marked experimental
        storage = optuna.storages.RDBStorage(f"sqlite:///{folder / name}.db", heartbeat_interval=10, grace_period=30)
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True, direction="maximize",
                               sampler=optuna.samplers.TPESampler(seed=seed),
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(2, epochs // 3)))


def objective(base: Config, space: dict, splits: Splits, runs: Path):
    """Optuna's objective: train one sampled config, report every epoch's validation macro-F1, prune below the median."""
    def run_trial(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", os.getpid())  # which process ran it (studies shared by several)
        values = suggest(trial, space)
        cfg = config_from_dict(values | {"log_dir": str(runs), "run_name": f"trial-{trial.number:04d}"}, "search space", base)
        seen = {"epoch": 0, "best": 0.0}

        def report(model, record: dict, raw) -> None:
            seen.update(epoch=record["epoch"], best=max(seen["best"], record["val_macro_f1"]))
            trial.report(record["val_macro_f1"], record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            return train(cfg, splits, on_epoch_end=report, overwrite=True)["best_val_macro_f1"]
        except optuna.TrialPruned:  # a run directory with hyper-parameters for pruned trials too
            board = TensorBoardLogger(runs / cfg.run_name)
            board.log_hparams(cfg, {"best_val_macro_f1": seen["best"], "pruned_at_epoch": seen["epoch"]})
            board.close()
            raise
    return run_trial


def tune(base: Config, space: dict, study_name: str, n_trials: int, timeout: float | None = None) -> optuna.Study:
    """Run (or continue) ``study_name`` until it holds ``n_trials`` finished trials or ``timeout`` seconds pass; write its outputs."""
    folder = Path(base.log_dir) / "tune"
    study = open_study(study_name, folder, base.seed, base.epochs)
    baseline = base_values(base, space)
    if baseline and not study.trials:  # a tuned config is then never worse than the base on validation
        study.enqueue_trial(baseline, skip_if_exists=True)
    done = sum(t.state in COUNTED for t in study.trials)
    if done < n_trials:
        log.info("study %s: %d of %d trials done; storage %s", study_name, done, n_trials, folder / f"{study_name}.db")
        task = TASKS[base.task]  # the beats are read only when trials remain to run
        splits = load_splits(task, resolve_data_dir(base.data_dir, task), base.val_fraction, base.test_fraction, base.seed,
                             by_patients=base.split_by == "patients")
        study.optimize(objective(base, space, splits, folder / study_name), timeout=timeout, catch=(),
                       callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=COUNTED)])
    write_outputs(study, base, folder / study_name)
    return study


def best_config(study: optuna.Study, base: Config) -> dict:
    """The base config with the best trial's values: a file for ``train.py --config``."""
    return base.to_dict() | study.best_trial.params | {"run_name": "", "log_dir": "log"}


def write_outputs(study: optuna.Study, base: Config, out: Path) -> None:
    """best_config.json, trials.csv, history.png and importance.png (with two or more completed trials)."""
    out.mkdir(parents=True, exist_ok=True)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        log.warning("study %s has no completed trial yet: no best config", study.study_name)
        return
    write_text(out / "best_config.json", json.dumps(best_config(study, base), indent=2) + "\n")
    write_text(out / "trials.csv", study.trials_dataframe().to_csv(index=False))
    history_figure(study).savefig(out / "history.png", dpi=120)
    if len({t.value for t in complete}) >= 2:  # importance needs trials that differ in their scores
        importance_figure(study).savefig(out / "importance.png", dpi=120)
    log.info("best trial %d: validation macro-F1 %.4f; wrote %s", study.best_trial.number, study.best_value, out / "best_config.json")


def history_figure(study: optuna.Study) -> Figure:
    """Each finished trial's best validation macro-F1 (pruned ones hollow) and the best so far."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    best = -1.0
    steps, running = [], []
    for t in study.trials:  # failed and running trials have no final score: left out
        value = t.value if t.state == optuna.trial.TrialState.COMPLETE else max(t.intermediate_values.values(), default=None)
        if t.state not in COUNTED or value is None:
            continue
        pruned = t.state == optuna.trial.TrialState.PRUNED
        ax.scatter(t.number, value, facecolors="none" if pruned else "C0", edgecolors="C0")
        if not pruned:
            best = max(best, value)
        steps.append(t.number)
        running.append(best if best >= 0 else None)
    ax.step(steps, running, where="post", color="C1", label="best so far")
    ax.set(xlabel="trial", ylabel="validation macro-F1", title=f"study {study.study_name} (hollow: pruned)")
    ax.legend(loc="lower right")
    return fig


def importance_figure(study: optuna.Study) -> Figure:
    """Optuna's fANOVA importance of each searched key for the validation macro-F1."""
    importance = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    fig = Figure(figsize=(7, 0.5 + 0.4 * len(importance)))
    ax = fig.subplots()
    names = list(importance)[::-1]
    ax.barh(names, [importance[n] for n in names])
    ax.set(xlabel="importance (fANOVA)", title=f"study {study.study_name}")
    fig.tight_layout()
    return fig
