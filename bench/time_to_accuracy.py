"""Time to accuracy: wall time of the default config until test accuracy first reaches a target.

    python bench/time_to_accuracy.py [--target 0.98] [--max-epochs 15]

Trains with config/config.json on the full data. After each epoch an observer scores
the model on mitbih_test; this side evaluation never steers training (early stopping
and checkpoint selection still use validation only) and its time is not counted.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import ROOT, data_dir, save, table

from ecgnet.config import config_from_dict, load_config
from ecgnet.constants import TASKS
from ecgnet.data.datasets import load_files, load_splits
from ecgnet.runtime import configure_process
from ecgnet.training.evaluation import evaluate_model
from ecgnet.training.trainer import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=float, default=0.98)
    p.add_argument("--max-epochs", type=int, default=15)
    args = p.parse_args()
    configure_process(0, "cpu")  # what the CLI does: threads, deterministic kernels, allocator
    folder = data_dir()
    task = TASKS["mitbih"]
    test = load_files(folder, task.test_stems, task)
    rows = []

    class Reached(Exception):
        pass

    def observe(model, record, _raw_model):
        test_acc = evaluate_model(model, test)["accuracy"]
        elapsed = sum(r["epoch_seconds"] for r in rows) + record["epoch_seconds"]
        rows.append({"epoch": record["epoch"], "epoch_seconds": round(record["epoch_seconds"], 1),
                     "train_seconds": round(elapsed, 1), "val_macro_f1": round(record["val_macro_f1"], 4), "test_accuracy": round(test_acc, 4)})
        print(rows[-1], flush=True)
        if test_acc >= args.target:
            raise Reached

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_from_dict({"data_dir": str(folder), "log_dir": tmp, "run_name": "tta", "epochs": args.max_epochs},
                               base=load_config(ROOT / "config" / "config.json"))
        splits = load_splits(task, folder, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        start = time.perf_counter()
        try:
            train(cfg, splits, Path(tmp), on_epoch_end=observe)
        except Reached:
            pass
        wall = time.perf_counter() - start
    reached = rows and rows[-1]["test_accuracy"] >= args.target
    print(f"\nTime to {args.target:.1%} test accuracy, default config ({'reached' if reached else 'NOT reached'})\n")
    print(table(rows, ["epoch", "epoch_seconds", "train_seconds", "val_macro_f1", "test_accuracy"]))
    print(f"\ntraining time to target: {rows[-1]['train_seconds'] if reached else 'n/a'} s (wall incl. evaluation {wall:.0f} s)")
    print(f"wrote {save('time_to_accuracy', {'target': args.target, 'reached': bool(reached), 'epochs': rows, 'wall_s': wall})}")


if __name__ == "__main__":
    main()
