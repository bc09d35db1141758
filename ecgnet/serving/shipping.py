"""Making a shipped model: a trained run's best.pt -> ecgnet/weights/NAME.safetensors + NAME.json.

The card records what the model is for, how it was trained (config, split, the SHA-256
of its training files), its calibration, its figures on the full test set, and its
figures on the bundled subset, which a test recomputes from the shipped weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..cards import read_card
from ..checksums import sha256_file
from ..constants import DEFAULT_DETECTOR, ONNX_SUFFIX, TASKS
from ..data.datasets import BUNDLED_DIR, find_file, load_splits
from ..errors import EcgnetError
from ..metrics import aami_scores, classification_metrics
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.pretrained import WEIGHTS_DIR, load_model_file, write_model_file
from ..signals.records import read_recording
from ..training.evaluation import calibrate
from .diagnosis import RecordPredictor
from .inference import Predictor
from .labelling import label_record
from .scoring import evaluate

BUNDLED_RECORD = BUNDLED_DIR / "records" / "208"   # first minute of MIT-BIH record 208 (N, V and F beats)
BUNDLED_ECG = BUNDLED_DIR / "records" / "00184_lr"  # PTB-XL record 184: 10 s, 12 leads, fold 9, inferolateral + anteroseptal MI (likelihood 100)
LIMITS = ("Research software, not a medical device: not for diagnosis or any clinical decision. Figures are on "
          "MIT-BIH / PTB beats; other populations, leads, devices and noise levels may score lower.")


def ensure_calibrated(best_pt: Path) -> dict:
    """best.pt with its calibration temperature; fitted on the run's own validation split if it has none."""
    ckpt = load_checkpoint(best_pt)
    if "calibration" not in ckpt:
        cfg, task = ckpt["config"], TASKS[ckpt["task"]]
        splits = load_splits(task, Path(ckpt["split"]["data_dir"]), cfg["val_fraction"], cfg["test_fraction"], cfg["seed"],
                             by_patients=cfg.get("split_by") == "patients")
        recorded = ckpt["split"].get("val_records")
        if recorded is not None and sorted(set(splits.val.records.tolist())) != recorded:
            raise EcgnetError(f"{best_pt}: its validation records {recorded} cannot be rebuilt from its config; retrain it")
        ckpt["calibration"] = calibrate(ckpt, splits.val)
        save_checkpoint(best_pt, ckpt)
    return ckpt


def bundled_figures(predictor: Predictor) -> dict:
    """Figures of a model on data shipped with the package (the check a test repeats on the shipped weights).

    Beat models: accuracy and macro-F1 on the bundled test beats of their task (all bundled
    beats for PTB, whose bundled files hold no separate test file). Rhythm models need a
    recording: beats per class and mean probability on the bundled minute of record 208.
    """
    if predictor.needs_rhythm:
        result = label_record(predictor, read_recording(BUNDLED_RECORD))
        return {"data": f"bundled record 208, first minute, detector {DEFAULT_DETECTOR}", "per_class": result["summary"]["per_class"],
                "mean_probability": round(float(result["table"]["probability"].mean()), 6)}
    from ..data.beatfiles import read_beats

    task = TASKS[predictor.task]
    stems = task.test_stems or task.train_stems
    parts = [read_beats(find_file(BUNDLED_DIR, s)) for s in stems]
    beats = np.concatenate([b for b, _ in parts])
    labels = np.concatenate([y for _, y in parts]).astype(int)
    m = classification_metrics(labels, predictor.predict_proba(beats).argmax(1), tuple(predictor.class_names))
    return {"data": f"bundled {', '.join(stems)} ({len(labels)} beats)", "accuracy": round(m["accuracy"], 6),
            "macro_f1": round(m["macro_f1"], 6)}


def test_figures(best_pt: Path, data_dir: Path) -> dict:
    """Accuracy, macro-F1, per-class figures, ECE and coverage of a checkpoint on its task's full test set (a rhythm
    model's as ``predict --record`` labels, ``scoring.evaluate``)."""
    m = evaluate(best_pt, data_dir, device="cpu")
    c = m["calibration"]
    out = {"n": m["n"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
           "per_class": {k: {x: v[x] for x in ("precision", "recall", "f1", "support")} for k, v in m["per_class"].items()},
           "ece_uncalibrated": c["ece_uncalibrated"], "ece": c["ece"], "coverage": c["coverage"],
           "irregular_rhythm_share": m["irregular_rhythm_share"]}
    if "roc_auc" in m:
        out["roc_auc"] = m["roc_auc"]
    if set(m["class_names"]) >= {"N", "S", "V", "F"}:
        cm = np.asarray(m["confusion_matrix"])
        y = np.repeat(np.arange(len(cm)), cm.sum(1))
        p = np.concatenate([np.repeat(np.arange(len(cm)), row) for row in cm])
        out["aami"] = aami_scores(y, p, tuple(m["class_names"]))
    return out


def headline_of(t: dict, unseen_patients: bool) -> str:
    """One line of test figures for ``ecgnet models``: S and V Se / +P for models of unseen patients."""
    if unseen_patients and "aami" in t:
        a = t["aami"]["per_class"]
        return (f"unseen patients: acc {t['aami']['accuracy']:.1f}%, S {a['S']['se']:.0f}/{a['S']['ppv']:.0f}, "
                f"V {a['V']['se']:.0f}/{a['V']['ppv']:.0f} (Se/+P %)")
    return f"acc {100 * t['accuracy']:.1f}%, macro-F1 {t['macro_f1']:.3f}" + (f", AUC {t['roc_auc']:.3f}" if "roc_auc" in t else "")


def training_files(ckpt: dict, user_train_dir: str) -> dict:
    """SHA-256 of each file the training split was drawn from, in the folder a user makes them in (``user_train_dir``)."""
    folder = Path(ckpt["split"]["data_dir"])
    files = [find_file(folder, s) for s in TASKS[ckpt["task"]].train_stems]
    return {"folder": user_train_dir, "sha256": {f.name: sha256_file(f) for f in files if f is not None}}


def ship(run_dir: Path, name: str, description: str, intended_use: str, data_dir: Path, test_data: str,
         user_data_dir: str = "data", out_dir: Path = WEIGHTS_DIR, user_train_dir: str | None = None) -> Path:
    """Write ``run_dir/best.pt`` as the shipped model ``name`` with its card; returns the .safetensors path.

    ``data_dir`` holds the test data measured now (described by ``test_data``);
    ``user_data_dir`` is where the card tells ``ecgnet test`` to look by default, ``user_train_dir`` (default: the
    same) where a user makes the training data: the card names these, not this machine's folders.
    """
    user_train_dir = user_train_dir or user_data_dir
    best_pt = Path(run_dir) / "best.pt"
    ckpt = ensure_calibrated(best_pt)
    figures = {"test": test_figures(best_pt, data_dir) | {"data": test_data},
               "bundled": bundled_figures(Predictor(ckpt, "cpu", source=name))}
    headline = headline_of(figures["test"], ckpt["config"].get("split_by") == "patients")
    card = {"description": description, "intended_use": intended_use, "limits": LIMITS, "headline": headline,
            "figures": figures, "training_data": training_files(ckpt, user_train_dir)}
    ckpt["split"] = ckpt["split"] | {"data_dir": user_data_dir}
    ckpt["config"] = ckpt["config"] | {"data_dir": user_train_dir}
    path = write_model_file(ckpt, Path(out_dir) / name, card)
    ship_onnx(name, out_dir)
    return path


def ship_onnx(name: str, out_dir: Path = WEIGHTS_DIR) -> Path:
    """Export the model file ``name`` in ``out_dir`` as NAME.onnx beside it and record the graph's SHA-256 in its card:
    the default backend of ``ecgnet predict`` when onnxruntime is installed (``ecgnet.serving.batch.choose_backend``)."""
    from .export import export_onnx

    base = Path(out_dir) / name
    path = export_onnx(load_model_file(base), base.with_suffix(ONNX_SUFFIX), name)
    card = read_card(base) | {"onnx_sha256": sha256_file(path)}
    write_text(base.with_suffix(".json"), json.dumps(card, indent=1) + "\n")
    return path


MI_LIMITS = ("Research software, not a medical device: not for diagnosis or any clinical decision. Trained and measured on "
             "PTB-XL (one German hospital, 10 s resting 12-lead ECGs at 100 Hz) for MI against normal ECGs only: records of "
             "other diagnoses (conduction disturbance, hypertrophy, ST-T change) were left out of training and are not a "
             "class, so their verdicts mean little.")


def record_headline(figures: dict) -> str:
    """One line of a record model's fold-9 figures: AUC, sensitivity and specificity per lead set."""
    return "; ".join(f"{leads}: AUC {f['test']['record']['roc_auc']:.3f}, Se {100 * f['test']['record']['sensitivity']:.1f}%, "
                     f"Sp {100 * f['test']['record']['specificity']:.1f}%" for leads, f in figures.items())


def bundled_verdicts(predictor: RecordPredictor) -> dict:
    """p of the positive class on the bundled 12-lead example, from its 12 leads and from lead II alone (a test recomputes it)."""
    from ..signals.leads import MultiLead, lead_slot
    from .diagnosis import read_record_leads

    recording = read_record_leads(BUNDLED_ECG)
    ii = [i for i, n in enumerate(recording.names) if lead_slot(n) == 1]
    lead_ii = MultiLead(recording.signals[ii], recording.fs, [recording.names[i] for i in ii], recording.name)
    out = {"record": BUNDLED_ECG.name}
    for r in (recording, lead_ii):
        verdict = predictor.judge(r)
        out[verdict["leads"]] = {"record_class": verdict["record_class"], f"p_{predictor.positive}": verdict[f"p_{predictor.positive}"]}
    return out


def ship_record_model(ckpt: dict, name: str, description: str, intended_use: str, data_dir: Path, user_data_dir: str,
                      out_dir: Path = WEIGHTS_DIR) -> Path:
    """Write a trained record model (``ecgnet.training.record_training``) as the shipped model ``name`` with its card:
    its fold-8 thresholds and its figures per lead set on fold 8 (selection) and fold 9 (reported only)."""
    from ..data.ptbxl import BEATS_FILE, INDEX_FILE, RECIPE_FILE

    figures = ckpt["val_metrics"]
    bundled = bundled_verdicts(RecordPredictor(ckpt, name))
    card = {"description": description, "intended_use": intended_use, "limits": MI_LIMITS, "headline": record_headline(figures),
            "figures": figures | {"bundled": bundled}, "history": ckpt.get("history", []),
            "training_data": {"folder": user_data_dir, "sha256": {f: sha256_file(Path(data_dir) / f) for f in (BEATS_FILE, INDEX_FILE, RECIPE_FILE)}}}
    ckpt = ckpt | {"split": ckpt["split"] | {"data_dir": user_data_dir}, "config": ckpt["config"] | {"data_dir": user_data_dir}}
    return write_model_file(ckpt, Path(out_dir) / name, card)
