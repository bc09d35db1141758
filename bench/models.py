"""The registry's models on one split: accuracy, macro-F1, size, speed and PTB transfer, seeds x configs.

    python bench/models.py [--models kachuee cnn_lstm gru cnn_bilstm_attn] [--seeds 0 1 2] [--configs default tuned]
                           [--epochs N] [--device cuda]

For each model, config and seed: train on the reference MIT-BIH training file
(validation split for early stopping; config/config.json, or config/<model>_tuned.json
for 'tuned', skipped where there is none), then score best.pt on the test file, time
inference at batch 1,024, and train a frozen-trunk PTB head on it
(config/ptbdb_transfer.json). Runs go to log/models/<model>-<config>-s<seed>.
Prints mean ± sd over seeds and writes bench/results/models.json and docs/models.png. Each run's
figures are kept in log/models/<run>/models.json and reused by later invocations (--retrain to
train again), so models, configs and seeds can be added one command at a time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from common import ROOT, data_dir, mean_sd, save, table
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ecgnet.config import config_from_dict, load_config
from ecgnet.constants import TASKS
from ecgnet.data.beatfiles import read_beats
from ecgnet.data.datasets import find_file, load_splits
from ecgnet.models.model import count_parameters
from ecgnet.models.registry import create_model, list_models
from ecgnet.runtime import configure_process
from ecgnet.serving.inference import Predictor
from ecgnet.serving.scoring import evaluate
from ecgnet.training.trainer import train

LOG = ROOT / "log" / "models"


def config_file(model: str, config: str):
    path = ROOT / "config" / ("config.json" if config == "default" else f"{model}_tuned.json")
    return path if path.exists() else None


def run_name(model: str, config: str, seed: int, args: argparse.Namespace) -> str:
    """log/models/<model>-<config>-s<seed>[-e<epochs> when --epochs shortens the configs' budget]."""
    return f"{model}-{config}-s{seed}" + (f"-e{args.epochs}" if args.epochs else "")


def run_one(model: str, config: str, seed: int, args: argparse.Namespace, beats: np.ndarray) -> dict:
    """Train, test, time inference and transfer one (model, config, seed)."""
    overrides = {"model": model, "seed": seed, "data_dir": str(data_dir()), "log_dir": str(LOG), "run_name": run_name(model, config, seed, args),
                 "device": args.device} | ({"epochs": args.epochs} if args.epochs else {})
    cfg = config_from_dict(overrides, base=load_config(config_file(model, config)))
    summary = train(cfg, overwrite=True)
    run_dir = summary["run_dir"]
    metrics = evaluate(run_dir / "best.pt", cfg.data_dir, args.device)
    predictor = Predictor.from_checkpoint(run_dir / "best.pt", args.device)
    predictor.predict_proba(beats[:1024])
    start = time.perf_counter()
    predictor.predict_proba(beats)
    rate = len(beats) / (time.perf_counter() - start)
    ptb = config_from_dict({"pretrained": str(run_dir / "best.pt"), "model": model, "seed": seed, "data_dir": str(data_dir()),
                            "log_dir": str(LOG), "run_name": run_name(model, config, seed, args) + "-ptb", "device": args.device},
                           base=load_config(ROOT / "config" / "ptbdb_transfer.json"))
    ptb_dir = train(ptb, load_splits(TASKS["ptbdb"], data_dir(), ptb.val_fraction, ptb.test_fraction, seed), overwrite=True)["run_dir"]
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "f1": {c: m["f1"] for c, m in metrics["per_class"].items()},
            "epoch_s": statistics.median(h["epoch_seconds"] for h in summary["history"]), "epochs": summary["epochs"],
            "beats_per_s": rate, "ptb_accuracy": evaluate(ptb_dir / "best.pt", data_dir(), args.device)["accuracy"]}


def result_of(model: str, config: str, seed: int, args: argparse.Namespace, beats: np.ndarray) -> dict:
    """One run's figures: kept from an earlier invocation (log/models/<run>/models.json) unless --retrain, else measured now."""
    path = LOG / run_name(model, config, seed, args) / "models.json"
    if path.exists() and not args.retrain:
        return json.loads(path.read_text())
    result = run_one(model, config, seed, args, beats)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def summarise(model: str, config: str, runs: list[dict]) -> dict:
    classes = TASKS["mitbih"].class_names
    return {"model": model, "config": config, "seeds": len(runs), "parameters": f"{count_parameters(create_model(model, 5)):,}",
            "epoch_s": f"{statistics.median(r['epoch_s'] for r in runs):.1f}",
            "accuracy_%": mean_sd([100 * r["accuracy"] for r in runs], 2), "macro_f1": mean_sd([r["macro_f1"] for r in runs], 3),
            "F1 " + "/".join(classes): " / ".join(f"{np.mean([r['f1'][c] for r in runs]):.3f}" for c in classes),
            "beats_per_s": f"{statistics.median(r['beats_per_s'] for r in runs):,.0f}",
            "ptb_frozen_%": mean_sd([100 * r["ptb_accuracy"] for r in runs], 2), "runs": runs}


def figure(rows: list[dict]) -> Figure:
    """Test accuracy against parameters; marker area grows with inference speed."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for i, r in enumerate(rows):
        acc = [100 * run["accuracy"] for run in r["runs"]]
        speed = statistics.median(run["beats_per_s"] for run in r["runs"])
        params = int(r["parameters"].replace(",", ""))
        ax.errorbar(params, np.mean(acc), yerr=np.std(acc, ddof=1) if len(acc) > 1 else 0, fmt="none", color=f"C{i}")
        ax.scatter(params, np.mean(acc), s=20 + speed / 500, color=f"C{i}", label=f"{r['model']} ({r['config']}), {speed:,.0f} beats/s")
    ax.set(xscale="log", xlabel="parameters", ylabel="test accuracy (%)", title="MIT-BIH test set: accuracy, size, speed (marker area)")
    sizes = sorted({int(r["parameters"].replace(",", "")) for r in rows})
    ax.set_xticks(sizes, [f"{v:,}" for v in sizes])  # each model's size: decade ticks may not fall in a narrow range
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.15, y=0.15)
    ax.legend(fontsize=8, loc="best")
    return fig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=[m for m in list_models() if m != "kachuee_rr"],
                   default=[m for m in list_models() if m != "kachuee_rr"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", nargs="+", choices=("default", "tuned"), default=["default", "tuned"])
    p.add_argument("--epochs", type=int, help="override the configs' epochs (a smaller budget)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--retrain", action="store_true", help="train again where an earlier invocation's run exists")
    args = p.parse_args()
    configure_process(0, args.device)
    beats, _ = read_beats(find_file(data_dir(), "mitbih_test"), 5)
    rows = []
    for model in args.models:
        for config in args.configs:
            if config_file(model, config) is None:
                print(f"skip {model} ({config}): no config/{model}_tuned.json")
                continue
            rows.append(summarise(model, config, [result_of(model, config, seed, args, beats) for seed in args.seeds]))
    columns = ["model", "config", "seeds", "parameters", "epoch_s", "accuracy_%", "macro_f1", "F1 N/S/V/F/Q", "beats_per_s", "ptb_frozen_%"]
    print(f"\nRegistry models, reference MIT-BIH split, device {args.device}\n")
    print(table(rows, columns))
    figure(rows).savefig(ROOT / "docs" / "models.png", dpi=120, bbox_inches="tight")
    print(f"\nwrote {save('models', {'device': args.device, 'epochs': args.epochs, 'rows': rows})} and docs/models.png")


if __name__ == "__main__":
    main()
