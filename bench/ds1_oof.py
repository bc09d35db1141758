"""DS1's out-of-fold predictions for bench/interpatient.py: each DS1 record predicted by the fold that did not
train on it, alone and pooled with a linear model fitted on the same records, and their AAMI scores. DS1's own
held-out records judge each ingredient without a DS2 beat involved."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ds2 import MITBIH, SCORED, dataset_proba

from ecgnet.data.prepare import unmatched_label
from ecgnet.metrics import aami_scores
from ecgnet.serving.inference import Predictor
from ecgnet.training.assemble import combined_checkpoint
from ecgnet.training.crossval import linear_expert


def out_of_fold(folds: dict, members: list[Predictor], full, cfg, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """DS1's out-of-fold class probabilities: of each fold's model, and of it pooled with a linear model fitted on
    the same (the other folds') beats, as ``linear_expert`` pools the ensemble (its arithmetic, on the member's
    probabilities already computed)."""
    oof, pooled = np.zeros((len(full), MITBIH.n_classes)), np.zeros((len(full), MITBIH.n_classes))
    for f, (checkpoint, member, rows) in enumerate(zip(folds["members"], members, folds["val_rows"])):
        linear = linear_expert(full, np.setdiff1d(np.arange(len(full)), rows), cfg, data, checkpoint["recipe"])
        held_out = full.subset(rows)
        oof[rows] = dataset_proba(member, held_out)
        experts = np.stack([oof[rows], dataset_proba(Predictor(linear, "cpu", source="linear"), held_out)], 1)
        pool = Predictor(combined_checkpoint([checkpoint, linear], [f"fold{f}", "linear"], "product"), "cpu").model
        with torch.no_grad():
            pooled[rows] = pool.forward_head(torch.from_numpy(np.log(np.maximum(experts, 1e-30))).float()).exp().numpy()
    return oof, pooled


def oof_scores(full, proba: np.ndarray, recipe: dict) -> dict:
    """AAMI scores of DS1's out-of-fold probabilities; on detected positions (``prepare --unmatched q``) the calls of
    detections that match no annotated beat count as false positives, as on DS2's detected beats."""
    y, y_pred = full.y.numpy(), proba.argmax(1)
    label = unmatched_label(recipe, MITBIH)
    unmatched = y_pred[y == label] if label >= 0 else None
    return aami_scores(y, y_pred, MITBIH.class_names, SCORED, unmatched_pred=unmatched)
