"""Training a record-level MI model (``ecgnet.models.record.LeadPool``) on PTB-XL: read top to bottom.

Folds 1-7 train, fold 8 selects the epoch (ROC AUC) and the threshold (Youden's J), fold 9 is reported only.
``mode``: 'frozen' (the shipped 'mitbih' trunk as it is: the paper's transfer), 'finetune' (that trunk trained
at ``trunk_lr_scale`` of the rate) or 'scratch' (a fresh trunk). With ``leads`` 'all', a share of the training
records (``lead_ii_share``) is shown through lead II alone, so that one model judges 12 leads or lead II.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..constants import MI_CLASSES, RHYTHM_LEAD
from ..data.ptbxl import FOLDS, LOCATIONS, RecordSet, load_ptbxl
from ..errors import EcgnetError
from ..metrics import detection_metrics, per_group, youden_threshold
from ..models import create_model
from ..models.checkpoint import load_trunk, new_checkpoint
from ..models.pretrained import resolve_checkpoint
from ..models.record import LeadPool, only_leads, record_probabilities, trunk_features

log = logging.getLogger(__name__)

MODES = ("frozen", "finetune", "scratch")
LEAD_SETS = {"all": None, "ii": (RHYTHM_LEAD,)}


@dataclass
class RecordTrainingConfig:
    data_dir: str = "data/ptbxl"
    mode: str = "finetune"
    pooling: str = "concat"
    leads: str = "all"            # what the model reads in training: all leads (some records as lead II alone) or lead II
    lead_ii_share: float = 0.3
    train_beats: int = 6          # beats per record in a training step when the trunk trains
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    trunk_lr_scale: float = 0.1
    patience: int = 8
    seed: int = 0
    pretrained: str = "mitbih"

    def check(self) -> None:
        if self.mode not in MODES:
            raise EcgnetError(f"mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.leads not in LEAD_SETS:
            raise EcgnetError(f"leads {self.leads!r}: choose one of {', '.join(LEAD_SETS)}")


def build_model(cfg: RecordTrainingConfig) -> LeadPool:
    """A LeadPool whose trunk is the pretrained model's (frozen or fine-tuned) or fresh (scratch)."""
    model = create_model("lead_pool", len(MI_CLASSES), pooling=cfg.pooling)
    if cfg.mode != "scratch":
        load_trunk(model.trunk, resolve_checkpoint(cfg.pretrained), cfg.pretrained)
    if cfg.mode == "frozen":
        model.trunk.requires_grad_(False)
    return model


def training_view(batch: RecordSet, cfg: RecordTrainingConfig, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A batch's tensors, with the leads the model is to see this step and, when the trunk trains, ``train_beats``
    random beats of each record (the record's mean feature is robust to which beats; the trunk's cost is per beat)."""
    beats, beat_mask, present = (torch.from_numpy(np.ascontiguousarray(a)) for a in (batch.beats, batch.beat_mask, batch.present))
    ii_only = only_leads(present, (RHYTHM_LEAD,))
    if cfg.leads == "ii":
        present = ii_only
    else:
        pick = torch.rand(len(present), generator=generator) < cfg.lead_ii_share
        present = torch.where(pick[:, None] & ii_only.any(1, keepdim=True), ii_only, present)
    if cfg.mode != "frozen":
        rank = torch.rand(beat_mask.shape, generator=generator).masked_fill(~beat_mask, 2.0).argsort(1).argsort(1)
        beat_mask = beat_mask & (rank < cfg.train_beats)
    return beats, beat_mask, present, torch.from_numpy(batch.labels)


def loss_of(model: LeadPool, x, beat_mask, present, labels, cached: bool) -> torch.Tensor:
    """Cross-entropy per record, or per beat for 'vote' (each beat with its record's label, as the paper's transfer);
    ``x`` holds beats, or the frozen trunk's features when ``cached``."""
    features = x if cached else model.forward_features(x, beat_mask, present)
    if model.pooling == "vote":
        logits, record = model.beat_logits(features, beat_mask, present)
        return F.cross_entropy(logits, labels[record])
    return F.cross_entropy(model.forward_head(features, beat_mask, present), labels)


def p_mi(model: LeadPool, records: RecordSet, leads: tuple[str, ...] | None = None, cached: bool = False) -> np.ndarray:
    """Each record's probability of MI, from all its leads or from ``leads`` only (``cached``: records.beats are features)."""
    present = torch.from_numpy(records.present)
    if leads is not None:
        present = only_leads(present, leads)
    probs = record_probabilities(model, records.beats, records.beat_mask, present, features=cached)
    return probs[:, MI_CLASSES.index("MI")].numpy()


def with_features(model: LeadPool, records: RecordSet) -> RecordSet:
    """``records`` with their beats replaced by the trunk's features (computed once: a frozen trunk gives the same each epoch)."""
    out = records.subset(np.arange(len(records.labels)))
    out.beats = trunk_features(model, records.beats, records.beat_mask, records.present).numpy()
    return out


def fit(cfg: RecordTrainingConfig, train: RecordSet, val: RecordSet) -> tuple[LeadPool, int, list[dict]]:
    """The model of the epoch with the best fold-8 ROC AUC, that epoch, and the history."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg)
    cached = cfg.mode == "frozen"
    if cached:
        train, val = with_features(model, train), with_features(model, val)
    head = [p for n, p in model.named_parameters() if not n.startswith("trunk.")]
    groups = [{"params": head, "lr": cfg.lr}]
    if cfg.mode != "frozen":
        groups.append({"params": model.trunk_parameters(), "lr": cfg.lr * (cfg.trunk_lr_scale if cfg.mode == "finetune" else 1)})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    best, best_auc, best_epoch, history = None, -1.0, 0, []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(train.labels), generator=generator).numpy()
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            batch = training_view(train.subset(order[start:start + cfg.batch_size]), cfg, generator)
            loss = loss_of(model, *batch, cached=cached)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        auc = detection_metrics(p_mi(model, val, LEAD_SETS[cfg.leads], cached), val.labels, 0.5)["roc_auc"]
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_auc": auc})
        log.info("epoch %d: loss %.4f, fold-8 AUC %.4f", epoch, np.mean(losses), auc)
        if auc > best_auc:
            best, best_auc, best_epoch = copy.deepcopy(model.state_dict()), auc, epoch
        elif epoch - best_epoch >= cfg.patience:
            break
    model.load_state_dict(best)
    return model, best_epoch, history


def figures(p: np.ndarray, records: RecordSet, threshold: float) -> dict:
    """Per record and per patient ROC AUC, Se, Sp at ``threshold``, and the sensitivity per MI location."""
    out = {"record": detection_metrics(p, records.labels, threshold),
           "patient": detection_metrics(*per_group(p, records.labels, records.patients), threshold)}
    locations = np.asarray(records.locations)
    out["sensitivity_by_location"] = {
        where: {"n": int(hit.sum()), "sensitivity": float((p[hit] >= threshold).mean()) if hit.any() else float("nan")}
        for where in LOCATIONS for hit in [np.char.find(locations.astype(str), where) >= 0]}
    return out


def train_record_model(cfg: RecordTrainingConfig) -> dict:
    """Train on folds 1-7, select on fold 8, measure on fold 9 (12 leads and lead II alone): a checkpoint dict."""
    cfg.check()
    data = load_ptbxl(cfg.data_dir)
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    if not len(train.labels) or len(set(val.labels)) < 2:
        raise EcgnetError(f"{cfg.data_dir}: needs records of folds 1-7 and MI and NORM records of fold 8")
    model, epoch, history = fit(cfg, train, val)
    results = {}
    for name, leads in (("12 leads", None), ("lead II", (RHYTHM_LEAD,))):
        if cfg.leads == "ii" and leads is None:
            continue
        threshold = youden_threshold(p_mi(model, val, leads), val.labels)
        results[name] = {"threshold": threshold, "val": figures(p_mi(model, val, leads), val, threshold),
                         "test": figures(p_mi(model, test, leads), test, threshold) if len(test.labels) else None}
    calibration = {"temperature": 1.0, "thresholds": {k: v["threshold"] for k, v in results.items()},
                   "fitted_on": "PTB-XL fold 8 (Youden's J)"}
    split = {"data_dir": cfg.data_dir, "folds": FOLDS, "n_train": int(len(train.labels)), "n_val": int(len(val.labels)),
             "n_test": int(len(test.labels))}
    return new_checkpoint("ptbxl", list(MI_CLASSES), "lead_pool", model.model_args, model.state_dict(), asdict(cfg),
                          {"database": "ptbxl", "before_r_s": 0.0, "detector": "default", "leads": "shared R peaks of lead II"},
                          split, epoch=epoch, val_metrics=results, calibration=calibration,
                          pretrained=cfg.pretrained if cfg.mode != "scratch" else None, history=history)
