"""What ``ecgnet train`` and ``ecgnet.train(cfg)`` run: one training run, or with ``folds`` K one run per fold of
patients, combined into one model (``crossval.train_folds``). The CLI and the Python API share this path."""
from __future__ import annotations

import os
from pathlib import Path

from ..config import Config
from ..errors import EcgnetError
from . import trainer
from .crossval import train_folds
from .distill import train_student
from .sources import training_splits


def train(cfg: Config, run_dir: str | Path | None = None, resume: dict | None = None, overwrite: bool = False) -> dict:
    """Train ``cfg`` (validated here) and return a summary with ``run_dir`` (its best.pt is the model) and ``data_dir``.

    One run (``ecgnet.training.trainer.train``: best epoch and score, history, seconds) continues from ``resume``, a
    last.pt checkpoint, into ``run_dir``. With ``folds`` K it trains K members and combines them (``members``:
    their checkpoints); ``overwrite`` then keeps members that finished with the same config, else it empties the run
    directory. With ``teacher`` it trains one student of that model (``distill.train_student``). ``data_dir`` is None for
    folds and students, whose best.pt names its own test data.
    """
    cfg.validate()
    if cfg.teacher:
        if resume is not None or run_dir is not None:
            raise EcgnetError("a student is trained afresh (it cannot be resumed); train again with --overwrite")
        return train_student(cfg, overwrite) | {"data_dir": None}
    if not cfg.folds:
        splits = training_splits(cfg)
        return trainer.train(cfg, splits, run_dir, resume, overwrite=overwrite) | {"data_dir": splits.data_dir}
    if resume is not None or run_dir is not None:
        raise EcgnetError("folds train their members afresh (a member cannot be resumed); train again with --overwrite, which "
                          "keeps the folds already finished with the same config")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise EcgnetError("folds are trained one after another in one process; run them without torchrun")
    return train_folds(cfg, cfg.folds, reuse=overwrite) | {"data_dir": None}
