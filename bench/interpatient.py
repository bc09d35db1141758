"""Inter-patient evaluation, MIT-BIH DS1 -> DS2 (de Chazal 2004): one ablation row per ingredient, several seeds.

    python bench/interpatient.py [--seeds 0 1 2] [--epochs 20] [--variants paper rhythm rhythm+weights]
    python bench/interpatient.py --cv 5 [--variants rhythm+window+weights]   # cross-validated over DS1 records
    python bench/interpatient.py --intra [--seeds 0]        # the same models on the random (intra-patient) split
    python bench/interpatient.py --errors mitbih-rr          # where a model errs on DS2, per record
    python bench/interpatient.py --model mitbih-rr --detector fused   # a model on DS2, with and without the gate

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
probabilities as they are, with per-class offsets fitted on the out-of-fold predictions of all
DS1 records (ecgnet.training.crossval), with S calls made N where the rhythm is irregular as in atrial
fibrillation (ecgnet.signals.fibrillation, as predict --record does), and both (offsets fitted after the gate).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import ROOT, mean_sd, save, table
from ds1_oof import oof_scores, out_of_fold
from ds2 import (
    CV_ROWS,
    MITBIH,
    SCORED,
    cv_probabilities,
    dataset_proba,
    detected_ds2,
    detected_proba,
    gate_detected,
    score_detected,
)
from sklearn.metrics import confusion_matrix

from ecgnet.config import config_from_dict, load_config
from ecgnet.data.datasets import load_files, load_splits, load_test_set
from ecgnet.data.prepare import prepare
from ecgnet.metrics import aami_scores
from ecgnet.models.checkpoint import load_checkpoint
from ecgnet.runtime import configure_process
from ecgnet.serving.inference import Predictor
from ecgnet.signals.fibrillation import gate_premature
from ecgnet.training.assemble import combined_checkpoint
from ecgnet.training.crossval import fit_class_offsets, linear_expert, train_folds
from ecgnet.training.reporting import make_run_dir
from ecgnet.training.trainer import train

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
    "rhythm+window+template+weights+lr1e-4": TEMPLATE | {"lr": 1e-4},
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


def run_cv_variant(name: str, seed: int, args) -> None:
    """One variant at one seed, cross-validated over DS1 records (``ecgnet.training.crossval.train_folds``): the folds'
    ensemble scored on DS2 as each of ``CV_ROWS`` (wall_s: folds trained or reused, and scoring)."""
    before_r_s = VARIANTS[name].get("before_r_s", 0.0)
    data = training_data(name, args)
    full = load_files(data, MITBIH.train_stems, MITBIH)
    test = load_test_set(MITBIH, prepared(args, before_r_s), None)
    detected = detected_ds2(Path(args.mitdb), args.detector, data.parent, before_r_s)
    start = time.perf_counter()
    cfg = variant_config(name, seed, args, data, f"ds-{name}-cv{args.cv}-seed{seed}")
    folds = train_folds(cfg, args.cv, reuse=not args.retrain)
    members = [Predictor(c, "cpu", source=f"fold{f}") for f, c in enumerate(folds["members"])]
    oof, pooled_oof = out_of_fold(folds, members, full, cfg, data)
    irregular_ds1 = full.irregular
    gated_oof = gate_premature(oof, irregular_ds1, MITBIH.class_names)
    scored = tuple(MITBIH.class_names.index(c) for c in SCORED)
    offsets, gate_offsets = (fit_class_offsets(np.log(np.maximum(p, 1e-12)), full.y.numpy(), scored) for p in (oof, gated_oof))
    averaged = load_checkpoint(folds["run_dir"] / "best.pt")
    ensemble = Predictor(averaged, "cpu", source="ensemble")
    linear = linear_expert(full, np.arange(len(full)), cfg, data, averaged["recipe"])
    pooled = Predictor(combined_checkpoint([averaged, linear], ["ensemble", "linear"], "product"), "cpu", source="pooled")
    annotated, found = cv_probabilities(ensemble, members, pooled, test, detected, test.irregular, offsets, gate_offsets)
    result = {"variant": f"{name}+cv{args.cv}", "seed": seed, "best_epochs": [c["epoch"] for c in folds["members"]],
              "wall_s": round(time.perf_counter() - start, 1), "offsets": offsets.round(2).tolist(),
              "gate_offsets": gate_offsets.round(2).tolist(), "oof": oof_scores(full, oof, averaged["recipe"]),
              "oof_gate": oof_scores(full, gated_oof, averaged["recipe"]),
              "oof_linear_gate": oof_scores(full, gate_premature(pooled_oof, irregular_ds1, MITBIH.class_names), averaged["recipe"])}
    for suffix in CV_ROWS:
        r = result | {"variant": result["variant"] + suffix,
                      "annotated": aami_scores(test.y.numpy(), annotated[suffix].argmax(1), MITBIH.class_names, SCORED),
                      "detected": score_detected(found[suffix], detected)}
        path = ROOT / "log" / "interpatient" / f"ds-{r['variant']}-seed{seed}" / "interpatient.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r, indent=1) + "\n")
        print(json.dumps({k: r[k] for k in ("variant", "seed", "best_epochs", "offsets")} | {"accuracy": round(r["annotated"]["accuracy"], 2)}), flush=True)


def result_of(name: str, seed: int, args) -> list[dict]:
    """The scores of one variant and seed (with --cv: the ``CV_ROWS``): from an earlier invocation's run, or trained now.
    With --cv a run whose folds are kept is scored again for rows added since; one whose folds are gone keeps the
    rows it has."""
    label = f"{name}+cv{args.cv}" if args.cv else name
    paths = [ROOT / "log" / "interpatient" / f"{args.split}-{label}{suffix}-seed{seed}" / "interpatient.json"
             for suffix in (CV_ROWS if args.cv else ("",))]
    folds_kept = (ROOT / "log" / "interpatient" / f"{args.split}-{name}-cv{args.cv}-seed{seed}" / "best.pt").exists()
    if args.retrain or not paths[0].exists() or (folds_kept and not all(p.exists() for p in paths)):
        (run_cv_variant if args.cv else run_variant)(name, seed, args)
    return [json.loads(p.read_text()) for p in paths if p.exists()]


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


def score_model(spec: str, args) -> None:
    """Print a trained model's (a shipped name or a checkpoint) DS2 scores, annotated and detected by --detector,
    as it answers and with S calls in irregular rhythm made N, as ``predict --record`` labels."""
    predictor = Predictor.from_checkpoint(spec, "cpu")
    data = prepared(args, predictor.before_r_s)
    test = load_test_set(MITBIH, data, None)
    detected = detected_ds2(Path(args.mitdb), args.detector, data.parent, predictor.before_r_s)
    annotated, found = dataset_proba(predictor, test), detected_proba(predictor, detected)
    scores = {"annotated": aami_scores(test.y.numpy(), annotated.argmax(1), MITBIH.class_names, SCORED),
              "annotated + gate": aami_scores(test.y.numpy(), gate_premature(annotated, test.irregular,
                                                                             MITBIH.class_names).argmax(1), MITBIH.class_names, SCORED),
              f"detected ({args.detector})": score_detected(found, detected),
              f"detected ({args.detector}) + gate": score_detected(gate_detected(found, detected), detected)}
    rows = [{"beats": name} | {f"{c} {m}": f"{s['per_class'][c][k]:.1f}" for c in SCORED for m, k in (("Se", "se"), ("+P", "ppv"))}
            | {"accuracy": f"{s['accuracy']:.1f}", "macro-F1": f"{100 * s['macro_f1']:.1f}"} for name, s in scores.items()]
    print(f"{spec} on DS2 (%)\n")
    print(table(rows, list(rows[0])))


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
                   help="cross-validate over K folds of DS1 records: the folds' models averaged, with and without offsets and the S gate")
    p.add_argument("--intra", action="store_true", help="the random (intra-patient) split instead of DS1 -> DS2")
    p.add_argument("--retrain", action="store_true", help="train again even where an earlier run's scores exist")
    p.add_argument("--errors", metavar="MODEL", help="only print where MODEL (a shipped name or checkpoint) errs on DS2, per record")
    p.add_argument("--model", metavar="MODEL", help="only score MODEL (a shipped name or checkpoint) on DS2, with and without the gate")
    args = p.parse_args()
    args.split = "random" if args.intra else "ds"
    if args.errors:
        return record_errors(args.errors, args)
    if args.model:
        configure_process(0, "cpu")
        return score_model(args.model, args)
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
    held_out = [{"variant": r["variant"] + suffix, "oof": r[key]} for r in results for suffix, key in
                (("+gate", "oof_gate"), ("+linear+gate", "oof_linear_gate")) if key in r and r["variant"].endswith(f"+cv{args.cv}")]
    if held_out:  # how DS1's own held-out records judge the gate and the linear expert (no DS2 beat involved)
        tables["oof"] = summary_rows(held_out, "oof")
        print("\nDS1 out-of-fold (each record predicted by the fold that did not train on it), annotated beats (%)\n")
        print(table(tables["oof"], columns))
    name = "interpatient_intra" if args.intra else "interpatient_cv" if args.cv else "interpatient"
    print(f"\nwrote {save(name, {'args': {k: v for k, v in vars(args).items()}, 'tables': tables, 'runs': results})}")


if __name__ == "__main__":
    main()
