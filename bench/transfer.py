"""Transfer learning on PTB: frozen MIT-BIH trunk vs fine-tuning vs training from scratch.

    python bench/transfer.py --pretrained log/mitbih-default/best.pt [--seeds 0 1 2]
    python bench/transfer.py --pretrained log/mitbih-default/best.pt --split-by patients

Each mode is trained with config/ptbdb_transfer.json for every seed (the seed also
draws the train/val/test split) and scored on its held-out test split. With
``--split-by beats`` (default) the split is stratified by beat over the Kaggle-layout
files, so the same patients are on both sides; with ``--split-by patients`` the PTB
records are prepared with their patient ids (``ecgnet prepare ptbdb``, cached in
log/transfer/data-ptbdb) and validation and test hold out whole patients.
Runs go to log/transfer/<split>-<mode>-s<seed> so TensorBoard shows them side by side.
Precision, recall and F1 are for the MI class (the positive class).
"""
from __future__ import annotations

import argparse
import time

from common import ROOT, data_dir, mean_sd, save, table

from ecgnet.config import config_from_dict, load_config
from ecgnet.constants import TASKS
from ecgnet.data.datasets import load_splits
from ecgnet.data.prepare import prepare
from ecgnet.runtime import configure_process
from ecgnet.serving.scoring import evaluate
from ecgnet.training.reporting import make_run_dir
from ecgnet.training.trainer import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained", required=True, help="MIT-BIH checkpoint whose trunk is transferred")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--modes", nargs="+", default=["frozen", "finetune", "scratch"])
    p.add_argument("--split-by", choices=("beats", "patients"), default="beats")
    p.add_argument("--ptbdb", default=str(ROOT.parent / "shared" / "data" / "ptbdb"), help="PTB records, for --split-by patients")
    args = p.parse_args()
    configure_process(0, "cpu")  # what the CLI does: threads, deterministic kernels, allocator
    base = load_config(ROOT / "config" / "ptbdb_transfer.json")
    folder = data_dir()
    if args.split_by == "patients":
        folder = ROOT / "log" / "transfer" / "data-ptbdb"
        if not (folder / "ptbdb_abnormal_index.csv").exists():
            prepare("ptbdb", args.ptbdb, folder)
    results = []
    for mode in args.modes:
        for seed in args.seeds:
            cfg = config_from_dict({"mode": mode, "seed": seed, "pretrained": args.pretrained, "data_dir": str(folder),
                                    "split_by": args.split_by, "log_dir": str(ROOT / "log" / "transfer"),
                                    "run_name": f"{args.split_by}-{mode}-s{seed}"}, base=base)
            run_dir = make_run_dir(cfg, overwrite=True)
            splits = load_splits(TASKS["ptbdb"], folder, cfg.val_fraction, cfg.test_fraction, seed,
                                 by_patients=args.split_by == "patients")
            t = time.perf_counter()
            summary = train(cfg, splits, run_dir)
            wall = time.perf_counter() - t
            m = evaluate(run_dir / "best.pt", folder, "cpu")
            mi = m["per_class"]["MI"]
            results.append({"mode": mode, "seed": seed, "accuracy": m["accuracy"], "precision": mi["precision"], "recall": mi["recall"],
                            "f1": mi["f1"], "roc_auc": m["roc_auc"], "macro_f1": m["macro_f1"], "train_s": wall,
                            "epochs": summary["epochs"], "best_epoch": summary["best_epoch"], "n_test": m["n"]})
            print(results[-1], flush=True)
    rows = []
    for mode in args.modes:
        rs = [r for r in results if r["mode"] == mode]
        row = {"mode": mode}
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            row[key] = mean_sd([r[key] * 100 for r in rs])
        row["train_s"] = mean_sd([r["train_s"] for r in rs], digits=0)
        rows.append(row)
    n_test = sorted({r["n_test"] for r in results})
    print(f"\nPTB test split by {args.split_by} ({n_test[0]}-{n_test[-1]} beats), mean ± sd over seeds {args.seeds}; "
          "precision/recall/F1 of MI, in %\n")
    print(table(rows, ["mode", "accuracy", "precision", "recall", "f1", "roc_auc", "train_s"]))
    name = "transfer" if args.split_by == "beats" else "transfer_patients"
    print(f"\nwrote {save(name, {'pretrained': args.pretrained, 'seeds': args.seeds, 'split_by': args.split_by, 'runs': results, 'summary': rows})}")


if __name__ == "__main__":
    main()
