"""End-to-end record classification, inter-patient: train on de Chazal DS1, test on DS2.

    python bench/interpatient.py [--epochs 20] [--mitdb ../shared/data/mitdb]

1. `prepare mitdb --split interpatient` (annotation positions) -> DS1 train / DS2 test CSVs;
2. train the default config on DS1 (validation carved from DS1);
3. score DS2 twice, AAMI EC57 style, per class Se / +P:
   - annotated: beats cut at the reference annotation positions;
   - detected: beats found by the GQRS detector, cut, classified and matched to the
     reference beats within 150 ms; a missed beat counts against Se of its class, a
     false detection against +P of the class it was given.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import ROOT, save, table

import numpy as np
import torch
from wfdb import processing

from ecgnet.prepare import prepare
from ecgnet.config import config_from_dict, load_config
from ecgnet.checkpoint import model_from_checkpoint
from ecgnet.constants import TASKS
from ecgnet.data import load_files, load_splits
from ecgnet.evaluation import predict_logits
from ecgnet.reporting import make_run_dir
from ecgnet.runtime import configure_process
from ecgnet.trainer import train
from ecgnet.preprocess import cut_detected_beats
from ecgnet.records import DS2, read_beat_annotations, read_wfdb

NAMES = TASKS["mitbih"].class_names
DE_CHAZAL = {"N": ("86.9", "99.2"), "S": ("75.9", "38.5"), "V": ("77.7", "81.9"), "F": ("89.4", "8.6"), "Q": ("", "")}


def se_pp(true: np.ndarray, pred: np.ndarray, n_ref: np.ndarray, n_pred: np.ndarray) -> dict:
    """Per-class Se and +P in %: TP over reference beats of the class, over beats predicted as the class."""
    out = {}
    for k, name in enumerate(NAMES):
        tp = int(((true == k) & (pred == k)).sum())
        out[name] = (100 * tp / n_ref[k] if n_ref[k] else float("nan"), 100 * tp / n_pred[k] if n_pred[k] else float("nan"))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--detector", default="gqrs")
    args = p.parse_args()
    task = TASKS["mitbih"]
    configure_process(0, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ds"
        prepare("mitdb", args.mitdb, data, split="interpatient")
        cfg = config_from_dict({"data_dir": str(data), "log_dir": str(ROOT / "log"), "run_name": "interpatient-ds1",
                                "epochs": args.epochs}, base=load_config(ROOT / "config" / "config.json"))
        run_dir = make_run_dir(cfg, overwrite=True)
        splits = load_splits(task, data, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        t = time.perf_counter()
        train(cfg, splits, run_dir)
        train_s = time.perf_counter() - t
        ckpt = torch.load(run_dir / "best.pt", weights_only=True)
        model = model_from_checkpoint(ckpt)
        test = load_files(data, task.test_stems, task)
        pred = predict_logits(model, test.x).argmax(1).numpy()
        true = test.y.numpy()
        annotated = se_pp(true, pred, np.bincount(true, minlength=5), np.bincount(pred, minlength=5))
        acc_annotated = float((pred == true).mean())

    all_true, all_pred, n_ref, n_pred = [], [], np.zeros(5, int), np.zeros(5, int)
    for name in DS2:
        base = Path(args.mitdb) / name
        rec = read_wfdb(base, channel=0)  # as prepare reads mitdb
        ref, ref_labels = read_beat_annotations(base)
        cut, found = cut_detected_beats(rec.signal, rec.fs, args.detector)
        beats_at = found[cut.index]
        labels = predict_logits(model, torch.from_numpy(cut.beats).unsqueeze(1)).argmax(1).numpy()
        c = processing.compare_annotations(ref, beats_at, int(round(0.15 * rec.fs)))
        matched = c.matching_sample_nums >= 0
        all_true.append(ref_labels[matched])
        all_pred.append(labels[c.matching_sample_nums[matched]])
        n_ref += np.bincount(ref_labels, minlength=5)
        n_pred += np.bincount(labels, minlength=5)
    true_d, pred_d = np.concatenate(all_true), np.concatenate(all_pred)
    detected = se_pp(true_d, pred_d, n_ref, n_pred)
    rows = []
    for name in NAMES:
        rows.append({"class": name, "annotated Se": f"{annotated[name][0]:.1f}", "annotated +P": f"{annotated[name][1]:.1f}",
                     "detected Se": f"{detected[name][0]:.1f}", "detected +P": f"{detected[name][1]:.1f}",
                     "de Chazal Se": DE_CHAZAL[name][0], "de Chazal +P": DE_CHAZAL[name][1]})
    print(f"\nDS2 ({len(DS2)} records), model trained on DS1 for up to {args.epochs} epochs ({train_s:.0f} s); "
          f"annotated-beat accuracy {acc_annotated:.4f}; detected beats matched {len(true_d)} of {n_ref.sum()} reference beats\n")
    print(table(rows, list(rows[0])))
    print(f"\nwrote {save('interpatient', {'rows': rows, 'train_s': train_s, 'accuracy_annotated': acc_annotated, 'matched': int(len(true_d)), 'reference_beats': int(n_ref.sum()), 'detections': int(n_pred.sum())})}")


if __name__ == "__main__":
    main()
