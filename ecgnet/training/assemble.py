"""Checkpoints of models that are not trained by gradient: combinations of trained checkpoints, and the linear model.

``combined_checkpoint`` makes one ``Combined`` model (``ecgnet.models.combined``) of trained checkpoints: by
the ``mean`` rule an ensemble of runs of one model (K folds, ``crossval.train_folds``), by the ``product`` rule
a pool of different models of one task and beat recipe (the folds' ensemble and the linear model).
``linear_checkpoint`` stores a linear model fitted in closed form (``ecgnet.models.linear.fit_linear``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config
from ..constants import TASKS
from ..data.datasets import PAPER_RECIPE
from ..errors import EcgnetError
from ..metrics import ECE_BINS
from ..models.checkpoint import new_checkpoint, temperature_of
from ..models.combined import COMBINED, Combined
from ..models.linear import LINEAR, RhythmLinear
from ..models.registry import is_assembled

ALIKE = ("task", "class_names", "model_name", "model_args", "recipe")  # what an ensemble's members share
POOLABLE = ("task", "class_names", "recipe")                            # what pooled models share
CALIBRATION = {"mean": "each member's validation fold (one temperature per member; their mean is used as it is)",
               "product": "each member's own (their product is used as it is)"}


def _check_parts(parts: list[dict], sources: list[str], rule: str) -> None:
    """Refuse parts that cannot be combined by ``rule``, with one line naming the odd one."""
    if len(parts) < 2:
        raise EcgnetError(f"combining needs 2 or more trained models, got {len(parts)}; pass several best.pt files")
    shared = ALIKE if rule == "mean" else POOLABLE
    for ckpt, source in zip(parts, sources):
        if rule == "mean" and is_assembled(ckpt.get("model_name", "kachuee")):
            raise EcgnetError(f"{source} is assembled ('{ckpt.get('model_name')}') already; pass its members' checkpoints instead")
        for key in shared:
            if ckpt.get(key) != parts[0].get(key):
                raise EcgnetError(f"{source}: its {key} {ckpt.get(key)!r} differs from {sources[0]}'s {parts[0].get(key)!r}; "
                                  f"models combined by their {rule} must be " +
                                  ("the same model on the same task and beats" if rule == "mean" else "of one task and beat recipe"))


def combined_checkpoint(parts: list[dict], sources: list[str], rule: str = "mean", split: dict | None = None) -> dict:
    """One checkpoint combining ``parts`` (checkpoint dicts; ``sources`` name them in errors) by ``rule``.

    Keeps each part's weights and calibration temperature; the combination itself is not re-calibrated
    (no beats are unseen by all parts) and carries temperature 1. ``split`` describes how the parts were
    trained (``train_folds``); by default, their own splits.
    """
    _check_parts(parts, sources, rule)
    first = parts[0]
    model = Combined(len(first["class_names"]), [{"model_name": c.get("model_name", "kachuee"), "model_args": c["model_args"]}
                                                 for c in parts], rule)
    state = {f"members.{k}.{key}": value for k, ckpt in enumerate(parts) for key, value in ckpt["model"].items()}
    state["temperatures"] = torch.tensor([temperature_of(c) for c in parts], dtype=torch.float32)
    model.load_state_dict(state)
    members = [{"source": s, "model_name": c.get("model_name", "kachuee"), "epoch": c["epoch"],
                "val_macro_f1": (c.get("val_metrics") or {}).get("macro_f1"), "val_records": c["split"].get("val_records"),
                "temperature": temperature_of(c)} for c, s in zip(parts, sources)]
    return new_checkpoint(first["task"], first["class_names"], COMBINED, model.model_args, model.state_dict(), first["config"],
                          first.get("recipe") or dict(PAPER_RECIPE),
                          split or {"data_dir": first["split"]["data_dir"], "members": [c["split"] for c in parts]},
                          epoch=max(c["epoch"] for c in parts), step=sum(c["step"] for c in parts), pretrained=first.get("pretrained"),
                          calibration={"temperature": 1.0, "bins": ECE_BINS, "fitted_on": CALIBRATION[rule]}, members=members)


def pool_experts(pooled: dict) -> list[dict]:
    """The experts of a product pool (e.g. a shipped ``mitbih-rr``: the folds' ensemble and the linear model), each a
    checkpoint of its own weights and temperature, the pool's task, recipe, config and training folder."""
    if pooled.get("model_name") != COMBINED or pooled["model_args"]["rule"] != "product":
        raise EcgnetError("not a pool of models (train with folds K and linear_expert true)")
    temperatures = pooled["model"]["temperatures"].tolist()
    return [new_checkpoint(pooled["task"], pooled["class_names"], m["model_name"], m["model_args"], _weights_of(pooled["model"], f"members.{k}."),
                           pooled["config"], pooled["recipe"], {"data_dir": pooled["split"]["data_dir"]}, epoch=pooled["epoch"],
                           calibration={"temperature": temperatures[k], "bins": ECE_BINS})
            for k, m in enumerate(pooled["model_args"]["members"])]


def fold_members(pooled: dict) -> list[dict]:
    """The K fold members of a ``train_folds`` pool (the product of the folds' ensemble and the linear model, e.g. a
    shipped ``mitbih-rr``), each a checkpoint with its own weights, temperature and validation patients, so that a pool
    whose run folder is gone can still be judged fold by fold (``crossval.pool_calibration``)."""
    ensemble = pool_experts(pooled)[0] if pooled.get("model_name") == COMBINED and pooled["model_args"]["rule"] == "product" else {}
    if ensemble.get("model_name") != COMBINED or ensemble["model_args"]["rule"] != "mean":
        raise EcgnetError("not a pool of a folds' ensemble and a linear model (train with folds K and linear_expert true)")
    temperatures = ensemble["model"]["temperatures"].tolist()
    val_records = pooled["members"][0]["val_records"]
    return [new_checkpoint(pooled["task"], pooled["class_names"], m["model_name"], m["model_args"],
                           _weights_of(ensemble["model"], f"members.{k}."), pooled["config"], pooled["recipe"],
                           {"data_dir": pooled["split"]["data_dir"], "val_records": val_records[k]},
                           epoch=pooled["epoch"], calibration={"temperature": temperatures[k], "bins": ECE_BINS})
            for k, m in enumerate(ensemble["model_args"]["members"])]


def _weights_of(state: dict, prefix: str) -> dict:
    """The entries of ``state`` under ``prefix``, with the prefix taken off (one part of a combined model)."""
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def linear_checkpoint(model: RhythmLinear, cfg: Config, data_dir: Path, recipe: dict, n_train: int) -> dict:
    """The checkpoint dict of a linear model fitted (``ecgnet.models.linear.fit_linear``) on ``n_train`` beats of ``data_dir``."""
    return new_checkpoint(cfg.task, TASKS[cfg.task].class_names, LINEAR, model.model_args, model.state_dict(), cfg.to_dict(), recipe,
                          {"data_dir": str(data_dir), "n_train": n_train, "val_records": None},
                          calibration={"temperature": 1.0, "bins": ECE_BINS, "fitted_on": "none: a logistic regression's own probabilities"})
