"""Record-level MI on PTB-XL: pooling, leads, and what the MIT-BIH trunk buys (frozen / finetune / scratch).

    ecgnet prepare ptbxl --src ../shared/data/ptbxl --out data/ptbxl --workers 2
    python bench/ptbxl_mi.py --data-dir data/ptbxl [--seeds 0 1 2] [--variants frozen-concat finetune-concat ...]
    python bench/ptbxl_mi.py --data-dir data/ptbxl --roc ptbxl-mi      # docs/ptbxl_roc.png: a model's fold-9 ROC curves

Each variant is trained for every seed on folds 1-7 (``ecgnet.training.record_training``), its epoch chosen by
fold-8 ROC AUC and its threshold by Youden's J on fold 8; fold 9 is only reported. Choices rest on the fold-8
column (mean of the seeds); the fold-9 columns are the figures. Per record and per patient (a patient's records
averaged), 12 leads and the same model on lead II alone. Results: bench/results/ptbxl_mi.json; ROC plot with --plot.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import RESULTS, ROOT, mean_sd, save, table

from ecgnet.runtime import configure_process
from ecgnet.training.record_training import RecordTrainingConfig, train_record_model

VARIANTS = {
    "frozen-concat": {"mode": "frozen", "pooling": "concat"},
    "frozen-attention": {"mode": "frozen", "pooling": "attention"},
    "frozen-vote-ii": {"mode": "frozen", "pooling": "vote", "leads": "ii"},   # the paper's transfer, scored per record
    "frozen-concat-ii": {"mode": "frozen", "pooling": "concat", "leads": "ii"},
    "finetune-concat": {"mode": "finetune", "pooling": "concat", "epochs": 15, "patience": 5},
    "scratch-concat": {"mode": "scratch", "pooling": "concat", "epochs": 15, "patience": 5},
}


def rows_of(results: dict) -> list[dict]:
    """One table row per variant and lead set: fold-8 AUC, fold-9 AUC / Se / Sp per record and per patient."""
    rows = []
    for variant, runs in results.items():
        for leads in runs[0]["figures"]:
            f = [r["figures"][leads] for r in runs]
            cell = lambda split, level, key: mean_sd([100 * x[split][level][key] for x in f])  # noqa: E731
            rows.append({"variant": variant, "leads": leads, "fold-8 AUC": cell("val", "record", "roc_auc"),
                         "fold-9 AUC": cell("test", "record", "roc_auc"), "Se": cell("test", "record", "sensitivity"),
                         "Sp": cell("test", "record", "specificity"), "patient AUC": cell("test", "patient", "roc_auc"),
                         "patient Se": cell("test", "patient", "sensitivity"), "patient Sp": cell("test", "patient", "specificity"),
                         "min": f"{np.mean([r['seconds'] for r in runs]) / 60:.1f}"})
    return rows


def draw_roc(model: str, data_dir: str) -> None:
    """The fold-9 ROC curves of a record model, from its 12 leads and from lead II, with its operating points."""
    from ecgnet.constants import RHYTHM_LEAD
    from ecgnet.data.ptbxl import load_ptbxl
    from ecgnet.plots import roc_figure, save_png
    from ecgnet.serving.batch import load_classifier
    from ecgnet.training.record_training import p_mi

    predictor = load_classifier(model, "torch")
    test = load_ptbxl(data_dir).split("test")
    curves = {leads: (p_mi(predictor.model, test, only), test.labels, predictor.thresholds[leads])
              for leads, only in (("12 leads", None), ("lead II", (RHYTHM_LEAD,)))}
    path = ROOT / "docs" / "ptbxl_roc.png"
    with open(path, "wb") as f:
        save_png(roc_figure(curves, f"{model}: MI vs NORM, PTB-XL fold 9 ({len(test.labels)} records)"), f, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/ptbxl")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--roc", metavar="MODEL", help="only draw MODEL's fold-9 ROC curves (12 leads, lead II) to docs/ptbxl_roc.png")
    args = p.parse_args()
    configure_process(0, "cpu")
    if args.roc:
        return draw_roc(args.roc, args.data_dir)
    path = RESULTS / "ptbxl_mi.json"
    results = json.loads(path.read_text())["results"] if path.exists() else {}
    for variant in args.variants:
        runs = []
        for seed in args.seeds:
            start = time.perf_counter()
            ckpt = train_record_model(RecordTrainingConfig(data_dir=args.data_dir, seed=seed, **VARIANTS[variant]))
            runs.append({"seed": seed, "epoch": ckpt["epoch"], "seconds": time.perf_counter() - start, "figures": ckpt["val_metrics"]})
            print(f"{variant} seed {seed}: epoch {ckpt['epoch']}, "
                  + ", ".join(f"{k} fold-9 AUC {v['test']['record']['roc_auc']:.4f}" for k, v in ckpt["val_metrics"].items()), flush=True)
        results[variant] = runs
        save("ptbxl_mi", {"results": results, "variants": VARIANTS})
    print(table(rows_of(results), ["variant", "leads", "fold-8 AUC", "fold-9 AUC", "Se", "Sp", "patient AUC", "patient Se",
                                   "patient Sp", "min"]))


if __name__ == "__main__":
    main()
