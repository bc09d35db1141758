"""Inter-patient evaluation, MIT-BIH DS1 -> DS2 (de Chazal 2004): one ablation row per ingredient, several seeds.

    python bench/interpatient.py [--seeds 0 1 2] [--epochs 20] [--variants paper rhythm rhythm+weights]
    python bench/interpatient.py --cv 5 [--variants rhythm+window+weights]   # cross-validated over DS1 records
    python bench/interpatient.py --intra [--seeds 0]        # the same models on the random (intra-patient) split
    python bench/interpatient.py --errors mitbih-rr          # where a model errs on DS2, per record

Prepares the interpatient split once (log/interpatient/data), detects the DS2 beats once per
detector (log/interpatient/detected_<detector>.npz), then for every variant and seed trains on
DS1 with early stopping and model selection on whole held-out DS1 records (never on DS2), and
scores DS2 twice: on beats cut at the annotated positions, and on the beats the detector found
(matched within 150 ms; missed beats count against Se and accuracy, extra detections as false
positives). AAMI EC57 per class N/S/V/F: Se, +P, FPR in %; accuracy and macro-F1 over N/S/V/F;
mean ± sd over seeds. Q is left out (DS1 holds 8 Q beats). Each run's scores are kept in
log/interpatient/<run>/interpatient.json and reused by later invocations (--retrain to train again),
so variants can be added one command at a time. With --cv K each variant trains K models, each
validated on a different fifth (for K=5) of the DS1 records; DS2 is scored on their averaged
probabilities, once as they are and once with per-class offsets fitted on the out-of-fold
predictions of all DS1 records (ecgnet.crossval).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import ROOT, mean_sd, save, table

import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.metrics import confusion_matrix
from wfdb import processing

from ecgnet.config import config_from_dict, load_config
from ecgnet.constants import TASKS
from ecgnet.crossval import fit_class_offsets, train_folds
from ecgnet.data import load_files, load_splits, load_test_set
from ecgnet.evaluation import model_inputs, predict_logits
from ecgnet.fibrillation import gate_premature, irregular_rhythm
from ecgnet.inference import Predictor
from ecgnet.checkpoint import load_checkpoint
from ecgnet.metrics import aami_scores
from ecgnet.prepare import prepare
from ecgnet.preprocess import cut_detected_beats
from ecgnet.records import DS2, read_beat_annotations, read_wfdb
from ecgnet.reporting import make_run_dir
from ecgnet.rhythm import rhythm_features
from ecgnet.runtime import configure_process
from ecgnet.trainer import train

MITBIH = TASKS["mitbih"]
SCORED = ("N", "S", "V", "F")
CV_ROWS = ("", "+offsets", "+gate")  # a cross-validated ensemble scored as it is, with out-of-fold offsets, with the S gate
TEMPLATE = {"model": "kachuee_rrt", "imbalance": "class_weights", "before_r_s": 0.25}  # the record-template ensemble
VARIANTS = {  # config keys; "before_r_s": the beat window (prepare --before-r); "positions": DS1's beat positions
             # for training (prepare --positions; DS2 is scored at the annotated and the detected positions alike);
             # "unmatched": DS1's detections that match no annotated beat (prepare --unmatched)
    "paper": {"model": "kachuee"},
    "paper+weights": {"model": "kachuee", "imbalance": "class_weights"},
    "rhythm": {"model": "kachuee_rr"},
    "rhythm+weights": {"model": "kachuee_rr", "imbalance": "class_weights"},
    "rhythm+sqrt_weights": {"model": "kachuee_rr", "imbalance": "sqrt_class_weights"},
    "rhythm+balanced": {"model": "kachuee_rr", "imbalance": "balanced_sampling"},
    "rhythm+window": {"model": "kachuee_rr", "before_r_s": 0.25},
    "rhythm+window+weights": {"model": "kachuee_rr", "imbalance": "class_weights", "before_r_s": 0.25},
    "rhythm+window+sqrt_weights": {"model": "kachuee_rr", "imbalance": "sqrt_class_weights", "before_r_s": 0.25},
    "rhythm+window+capped_weights": {"model": "kachuee_rr", "imbalance": "class_weights", "class_weight_cap": 50.0, "before_r_s": 0.25},
    "rhythm+window+weights+noaug": {"model": "kachuee_rr", "imbalance": "class_weights", "before_r_s": 0.25, "augment": False},
    "rhythm+window+template+weights": TEMPLATE,
    "rhythm+window+template+weights+gqrs": TEMPLATE | {"positions": "gqrs"},
    "rhythm+window+template+weights+gqrs_q": TEMPLATE | {"positions": "gqrs", "unmatched": "q"},
    "rhythm+window+template+weights+lr3e-4": TEMPLATE | {"lr": 3e-4},
    "rhythm+window+template+weights+gqrs_q+lr3e-4": TEMPLATE | {"positions": "gqrs", "unmatched": "q", "lr": 3e-4},
    "rhythm+window+template+balanced+lr3e-4": TEMPLATE | {"imbalance": "balanced_sampling", "lr": 3e-4},
    "rhythm+window+template+weights+focal+lr3e-4": TEMPLATE | {"focal_gamma": 2.0, "lr": 3e-4},
    "rhythm+window+weights+decay": {"model": "kachuee_rr", "imbalance": "class_weights", "before_r_s": 0.25, "weight_decay": 5e-4},
}
PUBLISHED = {  # Se / +P in %, accuracy in % (N/S/V/F)
    "de Chazal et al. 2004 (LD, RR + morphology)": {"N": (86.9, 99.2), "S": (75.9, 38.5), "V": (77.7, 81.9), "F": (89.4, 8.6), "accuracy": 86.2},
    "Mondéjar-Guerra et al. 2019 (SVM ensemble)": {"accuracy": 94.5},
    "Niu et al. 2020 (rhythm + morphology)": {"accuracy": 96.4},
}


def detected_ds2(mitdb: Path, detector: str, cache: Path, before_r_s: float) -> dict:
    """Per DS2 record: detected beats cut by the recipe, their rhythm and positions, and the reference annotations."""
    path = cache / (f"detected_{detector}.npz" if not before_r_s else f"detected_{detector}_before{before_r_s}.npz")
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {name: {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(name + "/")} for name in DS2}
    out = {}
    for name in DS2:
        rec = read_wfdb(mitdb / name, channel=0)  # as prepare reads mitdb
        cut, found = cut_detected_beats(rec.signal, rec.fs, detector, before_r_s)
        ref, labels = read_beat_annotations(mitdb / name)
        out[name] = {"beats": cut.beats, "rhythm": rhythm_features(found, rec.fs)[cut.index], "positions": found[cut.index],
                     "reference": ref, "labels": labels, "fs": np.array(rec.fs)}
    np.savez(path, **{f"{name}/{k}": v for name, d in out.items() for k, v in d.items()})
    return out


def detected_proba(predictor: Predictor, detected: dict) -> dict:
    """Class probabilities of each DS2 record's detected beats."""
    return {name: predictor.predict_proba(d["beats"], d["rhythm"]) for name, d in detected.items()}


def score_detected(proba: dict, detected: dict) -> dict:
    """AAMI scores of the detected DS2 beats, given their class probabilities per record (``detected_proba``)."""
    true, pred, unmatched, n_ref = [], [], [], np.zeros(MITBIH.n_classes, int)
    for name, d in detected.items():
        labels = proba[name].argmax(1)
        match = processing.compare_annotations(d["reference"], d["positions"], int(round(0.15 * float(d["fs"])))).matching_sample_nums
        hit = match >= 0
        true.append(d["labels"][hit])
        pred.append(labels[match[hit]])
        unmatched.append(np.delete(labels, match[hit]))
        n_ref += np.bincount(d["labels"], minlength=MITBIH.n_classes)
    return aami_scores(np.concatenate(true), np.concatenate(pred), MITBIH.class_names, SCORED, n_ref, np.concatenate(unmatched))


def average(member_probs: list[np.ndarray], offsets: np.ndarray) -> np.ndarray:
    """The members' mean class probabilities, each member's log-probabilities shifted by ``offsets`` first."""
    return np.mean([softmax(np.log(np.maximum(p, 1e-12)) + offsets, axis=1) for p in member_probs], axis=0)


def prepared(args, before_r_s: float, positions: str = "annotations", unmatched: str = "drop") -> Path:
    """The prepared split (cached under log/interpatient), its beats cut ``before_r_s`` s before R at ``positions``."""
    data = ROOT / "log" / "interpatient" / (f"data-{args.split}" + (f"-before{before_r_s}" if before_r_s else "")
                                            + (f"-{positions}" if positions != "annotations" else "")
                                            + (f"-unmatched_{unmatched}" if unmatched != "drop" else ""))
    if not (data / "mitbih_test_index.csv").exists():
        prepare("mitdb", args.mitdb, data, split="random" if args.intra else "interpatient", positions=positions,
                before_r_s=before_r_s, unmatched=unmatched)
    return data


def training_data(name: str, args) -> Path:
    """The prepared split variant ``name`` trains on."""
    v = VARIANTS[name]
    return prepared(args, v.get("before_r_s", 0.0), v.get("positions", "annotations"), v.get("unmatched", "drop"))


def variant_config(name: str, seed: int, args, data: Path, run_name: str):
    """The config of one variant's run on ``data``: config/config.json with the variant's keys and the bench's budget."""
    keys = {k: v for k, v in VARIANTS[name].items() if k not in ("before_r_s", "positions", "unmatched")}
    return config_from_dict(keys | {"data_dir": str(data), "log_dir": str(ROOT / "log" / "interpatient"), "run_name": run_name,
                                    "seed": seed, "epochs": args.epochs, "patience": args.patience,
                                    "split_by": "patients" if args.split == "ds" else "beats", "val_fraction": args.val_fraction},
                            base=load_config(ROOT / "config" / "config.json"))


def run_variant(name: str, seed: int, args) -> dict:
    """Train one variant at one seed on DS1 (or the random split's train file) and score it on the test file."""
    before_r_s = VARIANTS[name].get("before_r_s", 0.0)
    data = training_data(name, args)
    cfg = variant_config(name, seed, args, data, f"{args.split}-{name}-seed{seed}")
    splits = load_splits(MITBIH, data, cfg.val_fraction, cfg.test_fraction, seed, by_patients=cfg.split_by == "patients")
    run_dir = make_run_dir(cfg, overwrite=True)
    start = time.perf_counter()
    summary = train(cfg, splits, run_dir)
    ckpt = load_checkpoint(run_dir / "best.pt")
    predictor = Predictor(ckpt, "cpu", source=str(run_dir / "best.pt"))
    test = load_test_set(MITBIH, prepared(args, before_r_s), None)
    y_pred = dataset_proba(predictor, test).argmax(1)
    result = {"variant": name, "seed": seed, "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
              "train_s": round(time.perf_counter() - start, 1), "val_records": ckpt["split"]["val_records"],
              "annotated": aami_scores(test.y.numpy(), y_pred, MITBIH.class_names, SCORED)}
    if not args.intra:
        detected = detected_ds2(Path(args.mitdb), args.detector, data.parent, before_r_s)
        result["detected"] = score_detected(detected_proba(predictor, detected), detected)
    (run_dir / "interpatient.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("annotated", "detected")}
                     | {"annotated_accuracy": round(result["annotated"]["accuracy"], 2)}), flush=True)
    return result


def dataset_proba(predictor: Predictor, data) -> np.ndarray:
    """Calibrated class probabilities of a prepared dataset's beats (rhythm inputs already computed)."""
    data = model_inputs(predictor.model, data, "DS2")
    logits = predict_logits(predictor.model, data.x, rhythm=data.rhythm)
    return (logits / predictor.temperature).softmax(1).numpy()


def run_cv_variant(name: str, seed: int, args) -> None:
    """One variant at one seed, cross-validated over DS1 records (``ecgnet.crossval.train_folds``): the folds'
    ensemble scored on DS2 as it is, with per-class offsets fitted on the out-of-fold predictions, and with
    S calls in irregular rhythm made N (``ecgnet.fibrillation``; wall_s: folds trained or reused, and scoring)."""
    before_r_s = VARIANTS[name].get("before_r_s", 0.0)
    data = training_data(name, args)
    full = load_files(data, MITBIH.train_stems, MITBIH)
    test = load_test_set(MITBIH, prepared(args, before_r_s), None)
    detected = detected_ds2(Path(args.mitdb), args.detector, data.parent, before_r_s)
    start = time.perf_counter()
    folds = train_folds(variant_config(name, seed, args, data, f"ds-{name}-cv{args.cv}-seed{seed}"), args.cv, reuse=not args.retrain)
    members = [Predictor(c, "cpu", source=f"fold{f}") for f, c in enumerate(folds["members"])]
    oof = np.zeros((len(full), MITBIH.n_classes))
    for member, rows in zip(members, folds["val_rows"]):
        oof[rows] = dataset_proba(member, full.subset(rows))
    scored = tuple(MITBIH.class_names.index(c) for c in SCORED)
    offsets = fit_class_offsets(np.log(np.maximum(oof, 1e-12)), full.y.numpy(), scored)
    ensemble = Predictor.from_checkpoint(folds["run_dir"] / "best.pt", "cpu")
    test_probs = [dataset_proba(m, test) for m in members]  # the offsets were fitted on single models' outputs:
    detected_probs = [detected_proba(m, detected) for m in members]  # each member is shifted, then averaged
    annotated = {"": dataset_proba(ensemble, test), "+offsets": average(test_probs, offsets)}
    found = {"": detected_proba(ensemble, detected),
             "+offsets": {record: average([p[record] for p in detected_probs], offsets) for record in detected}}
    annotated["+gate"] = gate_premature(annotated[""], test_irregular(args, before_r_s), MITBIH.class_names)
    found["+gate"] = {record: gate_premature(p, irregular_rhythm(detected[record]["rhythm"][:, 0]), MITBIH.class_names)
                      for record, p in found[""].items()}
    result = {"variant": f"{name}+cv{args.cv}", "seed": seed, "best_epochs": [c["epoch"] for c in folds["members"]],
              "wall_s": round(time.perf_counter() - start, 1), "offsets": offsets.round(2).tolist(),
              "oof": aami_scores(full.y.numpy(), oof.argmax(1), MITBIH.class_names, SCORED)}
    for suffix in CV_ROWS:
        r = result | {"variant": result["variant"] + suffix,
                      "annotated": aami_scores(test.y.numpy(), annotated[suffix].argmax(1), MITBIH.class_names, SCORED),
                      "detected": score_detected(found[suffix], detected)}
        path = ROOT / "log" / "interpatient" / f"ds-{r['variant']}-seed{seed}" / "interpatient.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r, indent=1) + "\n")
        print(json.dumps({k: r[k] for k in ("variant", "seed", "best_epochs", "offsets")} | {"accuracy": round(r["annotated"]["accuracy"], 2)}), flush=True)


def test_irregular(args, before_r_s: float) -> np.ndarray:
    """Per annotated DS2 beat, whether the rhythm around it is irregular (``ecgnet.fibrillation``), record by record."""
    path = prepared(args, before_r_s) / "mitbih_test_index.csv"
    index = pd.read_csv(path, dtype={"record": str})
    irregular = np.zeros(len(index), bool)
    for rows in index.groupby("record", sort=False).indices.values():
        irregular[rows] = irregular_rhythm(index["pre_rr"].to_numpy()[rows])
    return irregular


def result_of(name: str, seed: int, args) -> list[dict]:
    """The scores of one variant and seed (with --cv: the ``CV_ROWS``): from an earlier invocation's run, or trained now
    (with --cv, a run whose folds exist is scored again, not retrained)."""
    label = f"{name}+cv{args.cv}" if args.cv else name
    paths = [ROOT / "log" / "interpatient" / f"{args.split}-{label}{suffix}-seed{seed}" / "interpatient.json"
             for suffix in (CV_ROWS if args.cv else ("",))]
    if not all(p.exists() for p in paths) or args.retrain:
        (run_cv_variant if args.cv else run_variant)(name, seed, args)
    return [json.loads(p.read_text()) for p in paths]


def summary_rows(results: list[dict], scoring: str) -> list[dict]:
    """One row per variant: mean ± sd over seeds of Se / +P / FPR per class, accuracy and macro-F1."""
    rows = []
    for name in dict.fromkeys(r["variant"] for r in results):
        runs = [r[scoring] for r in results if r["variant"] == name]
        row = {"variant": name, "seeds": len(runs)}
        for c in SCORED:
            row[f"{c} Se"] = mean_sd([r["per_class"][c]["se"] for r in runs])
            row[f"{c} +P"] = mean_sd([r["per_class"][c]["ppv"] for r in runs])
            row[f"{c} FPR"] = mean_sd([r["per_class"][c]["fpr"] for r in runs])
        row["accuracy"] = mean_sd([r["accuracy"] for r in runs])
        row["macro-F1"] = mean_sd([100 * r["macro_f1"] for r in runs])
        rows.append(row)
    return rows


def published_rows() -> list[dict]:
    rows = []
    for name, figures in PUBLISHED.items():
        row = {"variant": name}
        for c in SCORED:
            if c in figures:
                row[f"{c} Se"], row[f"{c} +P"] = (f"{v:.1f}" for v in figures[c])
        row["accuracy"] = f"{figures['accuracy']:.1f}"
        rows.append(row)
    return rows


def record_errors(spec: str, args, min_beats: int = 50) -> None:
    """Print where a model (a shipped name or a checkpoint) errs on the annotated DS2 beats: per record, each
    confusion of at least ``min_beats`` beats, largest first, after the overall confusion matrix."""
    predictor = Predictor.from_checkpoint(spec, "cpu")
    test = load_test_set(MITBIH, prepared(args, predictor.before_r_s), None)
    y, y_pred, records = test.y.numpy(), dataset_proba(predictor, test).argmax(1), np.asarray(test.records)
    names, labels = MITBIH.class_names, list(range(MITBIH.n_classes))
    print(f"{spec} on DS2, annotated beats; rows: truth, columns: prediction ({' '.join(names)})")
    print(confusion_matrix(y, y_pred, labels=labels))
    errors = []
    for record in np.unique(records):
        mine = records == record
        cm = confusion_matrix(y[mine], y_pred[mine], labels=labels)
        errors += [(int(cm[a, b]), record, names[a], names[b], int(cm[a].sum()))
                   for a, b in zip(*np.nonzero(cm >= min_beats)) if a != b]
    for n, record, truth, called, of in sorted(errors, reverse=True):
        print(f"{record}: {truth} called {called}: {n} of {of}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["paper", "rhythm", "rhythm+weights"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of DS1 records held out for validation")
    p.add_argument("--detector", default="gqrs")
    p.add_argument("--cv", type=int, default=0, metavar="K",
                   help="cross-validate over K folds of DS1 records: the folds' models averaged, with and without offsets")
    p.add_argument("--intra", action="store_true", help="the random (intra-patient) split instead of DS1 -> DS2")
    p.add_argument("--retrain", action="store_true", help="train again even where an earlier run's scores exist")
    p.add_argument("--errors", metavar="MODEL", help="only print where MODEL (a shipped name or checkpoint) errs on DS2, per record")
    args = p.parse_args()
    args.split = "random" if args.intra else "ds"
    if args.errors:
        return record_errors(args.errors, args)
    if args.cv and args.intra:
        p.error("--cv cross-validates over DS1 records; it does not apply to --intra")
    configure_process(0, "cpu")
    results = [r for v in args.variants for seed in args.seeds for r in result_of(v, seed, args)]
    columns = ["variant", "seeds"] + [f"{c} {m}" for c in SCORED for m in ("Se", "+P")] + ["accuracy", "macro-F1"]
    fpr_columns = ["variant"] + [f"{c} FPR" for c in SCORED]
    tables = {}
    for scoring in ("annotated",) + (() if args.intra else ("detected",)):
        rows = summary_rows(results, scoring)
        tables[scoring] = rows
        print(f"\n{'DS2' if not args.intra else 'random-split test'}, {scoring} beats, mean ± sd over seeds {args.seeds} (%)\n")
        print(table(rows + (published_rows() if scoring == "annotated" and not args.intra else []), columns))
        print("\n" + table(rows, fpr_columns))
    name = "interpatient_intra" if args.intra else "interpatient_cv" if args.cv else "interpatient"
    print(f"\nwrote {save(name, {'args': {k: v for k, v in vars(args).items()}, 'tables': tables, 'runs': results})}")


if __name__ == "__main__":
    main()
