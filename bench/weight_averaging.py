"""Weight averaging: the default MIT-BIH run, scored with averaged and with raw weights.

    python bench/weight_averaging.py [--run-name mitbih-default] [--set KEY=VALUE ...]

Trains config/config.json on the full data into log/<run-name> (the same train() that
train.py calls, so best.pt is the default run's checkpoint). Training keeps both the
exponential moving average of the weights and the raw weights; after every epoch an
observer scores both on mitbih_test. That side evaluation never steers training and
its time is not counted. The table compares the two selection rules that validation
alone allows: the averaged weights at their best validation macro-F1 (what best.pt
holds) and the raw weights at theirs. docs/weight_averaging.png plots the curves.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

from common import ROOT, data_dir, save, table

from ecgnet.config import config_from_dict, load_config, parse_override
from ecgnet.constants import TASKS
from ecgnet.data.datasets import load_files, load_splits
from ecgnet.models.model import ECGNet
from ecgnet.runtime import configure_process
from ecgnet.training.evaluation import evaluate_model
from ecgnet.training.reporting import make_run_dir
from ecgnet.training.trainer import train


def plot(epochs: list[dict], path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    x = [e["epoch"] for e in epochs]
    for ax, split in zip(axes, ("val", "test")):
        ax.plot(x, [e[f"{split}_raw_accuracy"] for e in epochs], label="raw weights", color="tab:gray", lw=1)
        ax.plot(x, [e[f"{split}_accuracy"] for e in epochs], label="averaged weights (EMA 0.999)", color="tab:blue", lw=2)
        ax.set_title(f"{split} accuracy per epoch" + (" (never used for selection)" if split == "test" else ""))
        ax.set_xlabel("epoch")
        ax.set_ylim(0.975, 0.99)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-name", default="mitbih-default")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as in train.py")
    args = p.parse_args()
    configure_process(0, "cpu")  # what the CLI does: threads, deterministic kernels, allocator
    folder = data_dir()
    task = TASKS["mitbih"]
    test = load_files(folder, task.test_stems, task)
    overrides = dict(parse_override(s) for s in args.set)
    cfg = config_from_dict({"data_dir": str(folder), "run_name": args.run_name, "log_dir": str(ROOT / "log")} | overrides,
                           base=load_config(ROOT / "config" / "config.json"))
    run_dir = make_run_dir(cfg, overwrite=True)
    splits = load_splits(task, folder, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    epochs: list[dict] = []
    raw_best = {"val_macro_f1": -1.0}

    def observe(averaged: ECGNet, record: dict, raw: ECGNet) -> None:
        avg_test, raw_test = evaluate_model(averaged, test), evaluate_model(raw, test)
        epochs.append({k: record[k] for k in ("epoch", "epoch_seconds", "val_accuracy", "val_macro_f1", "val_raw_accuracy", "val_raw_macro_f1")}
                      | {"test_accuracy": avg_test["accuracy"], "test_macro_f1": avg_test["macro_f1"],
                         "test_raw_accuracy": raw_test["accuracy"], "test_raw_macro_f1": raw_test["macro_f1"]})
        if record["val_raw_macro_f1"] > raw_best["val_macro_f1"]:
            raw_best.update(epoch=record["epoch"], val_macro_f1=record["val_raw_macro_f1"], state=copy.deepcopy(raw.state_dict()))
        print({k: round(v, 4) for k, v in epochs[-1].items()}, flush=True)

    start = time.perf_counter()
    summary = train(cfg, splits, run_dir, on_epoch_end=observe)
    wall = time.perf_counter() - start
    raw_model = ECGNet()
    raw_model.load_state_dict(raw_best["state"])
    raw_metrics = evaluate_model(raw_model, test)
    by_epoch = {e["epoch"]: e for e in epochs}
    avg = by_epoch[summary["best_epoch"]]
    rows = [
        {"weights": "averaged (best.pt)", "selected_epoch": summary["best_epoch"], "val_macro_f1": round(avg["val_macro_f1"], 4),
         "test_accuracy": round(avg["test_accuracy"], 4), "test_macro_f1": round(avg["test_macro_f1"], 4)},
        {"weights": "raw", "selected_epoch": raw_best["epoch"], "val_macro_f1": round(raw_best["val_macro_f1"], 4),
         "test_accuracy": round(raw_metrics["accuracy"], 4), "test_macro_f1": round(raw_metrics["macro_f1"], 4)},
    ]
    tail = epochs[-10:]
    spread = {k: round(statistics.pstdev(e[k] for e in tail), 4) for k in ("val_accuracy", "val_raw_accuracy", "test_accuracy", "test_raw_accuracy")}
    print(f"\nDefault config, {summary['epochs']} epochs ({len(splits.train)} training beats), median epoch "
          f"{statistics.median(e['epoch_seconds'] for e in epochs):.1f} s; selection by validation macro-F1\n")
    print(table(rows, ["weights", "selected_epoch", "val_macro_f1", "test_accuracy", "test_macro_f1"]))
    print(f"\nepoch-to-epoch standard deviation over the last {len(tail)} epochs: {spread}")
    plot(epochs, ROOT / "docs" / "weight_averaging.png")
    print(f"wrote docs/weight_averaging.png and {save('weight_averaging', {'config': cfg.to_dict(), 'rows': rows, 'epochs': epochs, 'last_epochs_std': spread, 'wall_s': wall})}")


if __name__ == "__main__":
    main()
