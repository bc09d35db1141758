"""Re-create the shipped models (ecgnet/weights/) and their model cards (docs/models/) from their configs.

    python tools/make_weights.py --heartbeat ../shared/data/heartbeat --mitdb ../shared/data/mitdb
    python tools/make_weights.py --models ptbdb-mi --heartbeat ../shared/data/heartbeat
    python tools/make_weights.py --models mitbih --run mitbih=log/shipped-mitbih   # ship an existing run
    python tools/make_weights.py --onnx-only            # (re)write the shipped models' ONNX graphs, weights untouched

Each model is trained with its config (runs go to log/shipped-<name>), calibrated on its
validation split, measured on its full test set and on the bundled subset, and written
as NAME.safetensors + NAME.json. 'ptbdb-mi' reuses the trunk of the shipped 'mitbih', so
make 'mitbih' first. 'mitbih-rr-ensemble' is the ensemble of 5 folds of patients of MIT-BIH DS1 pooled with the
linear rhythm model (config/interpatient.json), trained on beats cut 0.25 s before the R peaks GQRS finds, detections
that match no annotated beat labelled Q (data/ds-wide-gqrs), and measured on DS2, patients it never saw, at the
annotated positions (data/ds-wide); both are prepared here when missing. 'mitbih-rr' is one network learning the
ensemble's networks (config/interpatient_student.json, teacher 'mitbih-rr-ensemble'), pooled with the linear model.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ecgnet.cli import configure_logging
from ecgnet.cli import main as ecgnet
from ecgnet.config import config_from_dict, load_config
from ecgnet.data.prepare import prepare
from ecgnet.models.pretrained import WEIGHTS_DIR
from ecgnet.runtime import configure_process
from ecgnet.serving.shipping import ship, ship_onnx
from ecgnet.training.crossval import train_folds
from ecgnet.training.distill import train_student
from ecgnet.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "mitbih": {
        "config": "config/config.json", "data": "heartbeat", "user_data_dir": "data",
        "test_data": "mitbih_test.csv: other beats of the same 47 patients (intra-patient)",
        "description": "The paper's 5-class MIT-BIH beat classifier (N, S, V, F, Q), trained on the full Kaggle training file.",
        "intended_use": "Labelling single 187-sample beats cut by the paper's recipe (125 Hz, R peak first); the trunk for transfer. "
                        "Its figures are intra-patient: the test file holds other beats of the same 47 people.",
    },
    "ptbdb-mi": {
        "config": "config/ptbdb_transfer.json", "data": "heartbeat", "user_data_dir": "data", "set": {"pretrained": "mitbih"},
        "test_data": "20% of the PTB beats, split by beat (patients on both sides)",
        "description": "Myocardial infarction vs normal per beat (PTB Diagnostic, lead II): the shipped 'mitbih' trunk, frozen, with a new head (the paper's transfer).",
        "intended_use": "Per-beat MI screening research on PTB-like lead II beats. Split by beat, as in the paper: patients of the "
                        "test split were seen in training; split by patient the same recipe scores far lower (docs/experiments.md).",
    },
    "mitbih-rr-ensemble": {
        "config": "config/interpatient.json", "data": "ds-wide", "user_data_dir": "data/ds-wide", "user_train_dir": "data/ds-wide-gqrs",
        "train_data": "ds-wide-gqrs",
        "test_data": "MIT-BIH DS2: 22 patients never seen in training, annotated beat positions",
        "description": "Rhythm-aware 5-class beat classifier for new patients, the teacher of 'mitbih-rr': 5 networks, each "
                       "reading the beat cut 0.25 s before R beside its record's median beat plus 5 patient-normalised R-R "
                       "features (class-weighted loss), each trained on 4/5 of the MIT-BIH DS1 patients (22) and selected on the "
                       "other fifth, on the beats the GQRS detector finds (those matching no annotated beat labelled Q, so that "
                       "spurious detections are called Q, not V); their averaged probabilities pooled (normalised product) with "
                       "a class-balanced logistic regression on the R-R features and the beat, fitted on the DS1 beats that "
                       "match an annotated one.",
        "intended_use": "Labelling whole recordings of patients never seen in training (--checkpoint mitbih-rr-ensemble; the "
                        "default 'mitbih-rr' is one network learnt from these five). Needs the beat's rhythm and its record, so "
                        "it labels recordings, not single beats. Figures: DS2 (22 other patients).",
        "other_database": "the 23 shared MIT-BIH Supraventricular Arrhythmia records, 128 Hz, first ECG channel: never trained on, "
                          "but the recipe choices of docs/benchmarks.md (leads, calibration) were made on them, so this is a "
                          "validation figure, not a test",
    },
    "mitbih-rr": {
        "config": "config/interpatient_student.json", "data": "ds-wide", "user_data_dir": "data/ds-wide",
        "user_train_dir": "data/ds-wide-gqrs", "train_data": "ds-wide-gqrs",
        "test_data": "MIT-BIH DS2: 22 patients never seen in training, annotated beat positions",
        "description": "Rhythm-aware 5-class beat classifier for new patients, one network: it reads the beat cut 0.25 s before R "
                       "beside its record's median beat plus 5 patient-normalised R-R features, and learnt the probabilities of "
                       "the five networks of 'mitbih-rr-ensemble' (knowledge distillation) on the MIT-BIH DS1 beats the GQRS "
                       "detector finds, 18 DS1 patients for training and 4 for selection; pooled (normalised product) with a "
                       "class-balanced logistic regression on the R-R features and the beat, fitted on the DS1 beats that match "
                       "an annotated one.",
        "intended_use": "Labelling whole recordings of patients never seen in training (the default of 'ecgnet predict --record'): "
                        "a fifth of the ensemble's arithmetic. Needs the beat's rhythm and its record, so it labels recordings, "
                        "not single beats. Figures: DS2 (22 other patients).",
        "other_database": "the 23 shared MIT-BIH Supraventricular Arrhythmia records, 128 Hz, first ECG channel: never trained on, "
                          "but chosen on them (the student over its teacher, docs/benchmarks.md), so this is a validation "
                          "figure, not a test",
    },
}


def train_model(name: str, spec: dict, data_dir: Path) -> Path:
    """Train one shipped model (with the config's "folds": the ensemble of that many folds of patients; with "teacher":
    one network learning that model) -> its run dir."""
    cfg = config_from_dict({"data_dir": str(data_dir), "run_name": f"shipped-{name}"} | spec.get("set", {}),
                           source="make_weights", base=load_config(ROOT / spec["config"]))
    if cfg.folds:
        return train_folds(cfg, cfg.folds, overwrite=True)["run_dir"]
    if cfg.teacher:
        return train_student(cfg, overwrite=True)["run_dir"]
    return train(cfg, overwrite=True)["run_dir"]


def training_line(card: dict) -> str:
    """How a shipped model was trained, for its card: one run, or an ensemble's folds."""
    split = card["split"]
    files = ", ".join(f"`{k}` (SHA-256 `{v[:16]}…`)" for k, v in card["training_data"]["sha256"].items())
    if split.get("teacher"):
        return (f"- **Training**: config below; one network learning the probabilities of `{split['teacher']}`'s networks on "
                f"{split['n_train']} beats, selected by the true labels' macro-F1 on {split['n_val']} beats of other patients "
                f"({', '.join(split['val_records'])}; best epoch {card['epoch']}); pooled with the linear model fitted on the "
                f"training file's beats but the detections that match no annotated beat (`linear_expert`); data files {files}.")
    if card["model_args"].get("rule") == "product":
        return (f"- **Training**: config below, {split['folds']} folds of whole patients ({split['n_train']} beats), each member "
                f"validated on its fold's patients ({'; '.join(', '.join(v) for v in split['val_records'])}); their ensemble "
                f"pooled with the linear model fitted on the same beats but the detections that match no annotated beat "
                f"(`linear_expert`); data files {files}.")
    if "members" in card:
        epochs = ", ".join(str(m["epoch"]) for m in card["members"])
        return (f"- **Training**: config below, {split['folds']} folds of whole patients ({split['n_train']} beats); each member "
                f"validated on its fold's patients ({'; '.join(', '.join(v) for v in split['val_records'])}), best epochs {epochs}; "
                f"data files {files}.")
    return (f"- **Training**: config below; {split['n_train']} training / {split['n_val']} validation beats, "
            f"split by {card['config'].get('split_by', 'beats')}; best epoch {card['epoch']}; data files {files}.")


PREPARED = {  # the interpatient data of mitbih-rr: how each folder under data/ is made from the MIT-BIH records
    "ds-wide": {"positions": "annotations"},
    "ds-wide-gqrs": {"positions": "gqrs", "unmatched": "q"},
}


def data_for(spec: dict, args: argparse.Namespace, key: str = "data") -> Path:
    """The folder of a model's test data (``key`` "data") or training data ("train_data", default: the same)."""
    name = spec.get(key, spec["data"])
    if name == "heartbeat":
        return Path(args.heartbeat)
    out = ROOT / "data" / name
    if not (out / "mitbih_train.csv").exists():
        prepare("mitdb", Path(args.mitdb), out, split="interpatient", seed=0, before_r_s=0.25, **PREPARED[name])
    return out


def other_database_figures(path: Path, records_dir: Path, data: str) -> None:
    """Score the shipped model at ``path`` on the annotated records in ``records_dir`` (``ecgnet score``, as
    ``predict --record`` labels them) and add the gross figures to its card as figures["other_database"]."""
    out = ROOT / "log" / f"score-{path.stem}"
    code = ecgnet(["score", str(records_dir), "--checkpoint", path.stem, "--out", str(out), "--workers", "2"])  # the shipped name
    if code:
        raise SystemExit(f"scoring {path.stem} on {records_dir} failed (exit {code})")
    result = json.loads((out / "score.json").read_text())
    g = result["gross"]
    figures = {"data": data, "records": len(result["records"]), "beats": g["reference_beats"], "accuracy": g["accuracy"],
               "per_class": {c: {m: g["per_class"][c][m] for m in ("se", "ppv")} for c in ("N", "S", "V", "F")},
               "n_called_s": g["n_called_s"], "n_called_v": g["n_called_v"], "ece": g["ece"], "detection": g["detection"]}
    card = json.loads(path.with_suffix(".json").read_text())
    card["figures"]["other_database"] = figures
    path.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")


def model_card(card: dict) -> str:
    """docs/models/NAME.md from the shipped card."""
    f = card["figures"]
    t = f["test"]
    lines = [f"# Model card: `{card['name']}`", "", card["description"], "",
             f"- **Use it**: `ecgnet predict --checkpoint {card['name']} ...`; files `ecgnet/weights/{card['name']}.safetensors` + `.json` "
             f"(SHA-256 `{card['sha256'][:16]}…`, checked at every load).",
             f"- **Intended use**: {card['intended_use']}", f"- **Limits**: {card['limits']}",
             f"- **Model**: `{card['model_name']}` {json.dumps(card['model_args'])}, classes {', '.join(card['class_names'])}; "
             f"beats cut {card['recipe'].get('before_r_s', 0.0)} s before R.",
             training_line(card),
             f"- **Calibration**: temperature {card['calibration']['temperature']:.3f} fitted on "
             f"{ {'validation': 'the validation split'}.get(card['calibration']['fitted_on'], card['calibration']['fitted_on'])}; "
             f"test ECE ({card['calibration']['bins']} bins) {t['ece_uncalibrated']:.4f} before, {t['ece']:.4f} after"
             + (". On this test set the temperature fitted on the validation split does not carry over (ECE rises): "
                "read this model's probabilities as scores, not as frequencies." if t["ece"] > t["ece_uncalibrated"] else "."),
             "", f"## Test figures ({t['data']}; {t['n']} beats)", "",
             f"Accuracy {100 * t['accuracy']:.2f}%, macro-F1 {t['macro_f1']:.4f}" + (f", ROC AUC {t['roc_auc']:.4f}" if "roc_auc" in t else "") + "."
             + (f" Scored as `predict --record` labels: S calls in irregular rhythm (as in atrial fibrillation; "
                f"{100 * t['irregular_rhythm_share']:.1f}% of the beats) made N." if t.get("irregular_rhythm_share") is not None else ""),
             "", "| class | precision | recall | F1 | beats |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |" for k, v in t["per_class"].items()]
    if "aami" in t:
        a = t["aami"]
        lines += ["", f"AAMI scoring over N/S/V/F (Se / +P in %): accuracy {a['accuracy']:.1f}%, "
                  + ", ".join(f"{k} {v['se']:.1f} / {v['ppv']:.1f}" for k, v in a["per_class"].items()) + "."]
    if "other_database" in f:
        o = f["other_database"]
        lines += ["", f"## Another database ({o['data']}; {o['records']} records, {o['beats']} beats)", "",
                  f"Scored by `ecgnet score` as `predict --record` labels them: accuracy {o['accuracy']:.1f}%, "
                  + ", ".join(f"{c} Se / +P {v['se']:.1f} / {v['ppv']:.1f}" for c, v in o["per_class"].items() if c != "F")
                  + f"; N beats called S {o['n_called_s']:.2f}%, called V {o['n_called_v']:.2f}%; expected calibration error "
                  f"{o['ece']:.3f}; detection Se / +P {o['detection']['se']:.2f} / {o['detection']['ppv']:.2f}."]
    lines += ["", "With `--min-confidence P` beats below P are called uncertain; on this test set:", "",
              "| P | beats kept | accuracy of kept |", "|---|---|---|"]
    lines += [f"| {r['threshold']} | {100 * r['coverage']:.1f}% | {100 * r['accuracy']:.2f}% |" for r in t["coverage"]]
    lines += ["", f"Bundled-subset check ({f['bundled']['data']}): "
              + json.dumps({k: v for k, v in f["bundled"].items() if k != "data"}) + " — `tests/test_shipped.py` recomputes it.",
              "", "## Config", "", "```json", json.dumps(card["config"], indent=1), "```", "",
              f"Re-create: `python tools/make_weights.py --models {card['name']} --heartbeat DIR --mitdb DIR`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--heartbeat", default="data", help="folder with the Kaggle-layout CSVs")
    parser.add_argument("--mitdb", default="../shared/data/mitdb", help="folder with the MIT-BIH records (for mitbih-rr)")
    parser.add_argument("--svdb", default="../shared/data/svdb", help="annotated records of another database, scored for "
                        "mitbih-rr's card (default: the shared SVDB records)")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR", help="ship an existing run instead of training")
    parser.add_argument("--onnx-only", action="store_true", help="only export the shipped models' ONNX graphs (NAME.onnx, "
                        "their SHA-256 in the cards): what 'ecgnet predict' runs by default when onnxruntime is installed")
    args = parser.parse_args()
    configure_process(0, "cpu")
    configure_logging()
    if args.onnx_only:
        for name in args.models:
            print(f"{name}: {ship_onnx(name).relative_to(ROOT)}")
        return
    runs = dict(r.split("=", 1) for r in args.run)
    for name in args.models:
        spec = MODELS[name]
        data_dir = data_for(spec, args)
        run_dir = Path(runs[name]) if name in runs else train_model(name, spec, data_for(spec, args, "train_data"))
        path = ship(run_dir, name, spec["description"], spec["intended_use"], data_dir, spec["test_data"], spec["user_data_dir"],
                    user_train_dir=spec.get("user_train_dir"))
        if spec.get("other_database"):
            other_database_figures(path, Path(args.svdb), spec["other_database"])
        card = json.loads(path.with_suffix(".json").read_text())
        (ROOT / "docs" / "models").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs" / "models" / f"{name}.md").write_text(model_card(card))
        print(f"{name}: {card['headline']} -> {path.relative_to(ROOT)}, docs/models/{name}.md")
    print(f"shipped models in {WEIGHTS_DIR}")


if __name__ == "__main__":
    main()
