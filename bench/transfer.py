"""Transfer learning on PTB: frozen MIT-BIH trunk vs fine-tuning vs training from scratch.

    python bench/transfer.py --pretrained log/mitbih-default/best.pt [--seeds 0 1 2]

Each mode is trained with config/ptbdb_transfer.json for every seed (the seed also
draws the stratified train/val/test split) and scored on its held-out test split.
Runs go to log/transfer/<mode>-s<seed> so TensorBoard shows them side by side.
Precision, recall and F1 are for the MI class (the positive class).
"""
from __future__ import annotations

import argparse
import statistics
import time

from common import ROOT, data_dir, save, table

from ecgnet.config import config_from_dict, load_config
from ecgnet.constants import TASKS
from ecgnet.data import load_splits
from ecgnet.evaluation import evaluate
from ecgnet.reporting import make_run_dir
from ecgnet.runtime import configure_process
from ecgnet.trainer import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained", required=True, help="MIT-BIH checkpoint whose trunk is transferred")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--modes", nargs="+", default=["frozen", "finetune", "scratch"])
    args = p.parse_args()
    configure_process(0, "cpu")  # what the CLI does: threads, deterministic kernels, allocator
    base = load_config(ROOT / "config" / "ptbdb_transfer.json")
    folder = data_dir()
    results = []
    for mode in args.modes:
        for seed in args.seeds:
            cfg = config_from_dict({"mode": mode, "seed": seed, "pretrained": args.pretrained, "data_dir": str(folder),
                                    "log_dir": str(ROOT / "log" / "transfer"), "run_name": f"{mode}-s{seed}"}, base=base)
            run_dir = make_run_dir(cfg, overwrite=True)
            splits = load_splits(TASKS["ptbdb"], folder, cfg.val_fraction, cfg.test_fraction, seed)
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
            values = [r[key] * 100 for r in rs]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            row[key] = f"{statistics.mean(values):.1f} ± {sd:.1f}"
        times = [r["train_s"] for r in rs]
        row["train_s"] = f"{statistics.mean(times):.0f} ± {statistics.stdev(times) if len(times) > 1 else 0:.0f}"
        rows.append(row)
    print(f"\nPTB test split ({results[0]['n_test']} beats), mean ± sd over seeds {args.seeds}; precision/recall/F1 of MI, in %\n")
    print(table(rows, ["mode", "accuracy", "precision", "recall", "f1", "roc_auc", "train_s"]))
    print(f"\nwrote {save('transfer', {'pretrained': args.pretrained, 'seeds': args.seeds, 'runs': results, 'summary': rows})}")


if __name__ == "__main__":
    main()
