"""Train the Kachuee et al. ECG beat classifier, then evaluate the best checkpoint on the test set.

    python train.py                                   # config/config.json, data in data/
    python train.py --data-dir ../shared/data/heartbeat --epochs 30
    python train.py --config config/ptbdb_transfer.json --mode frozen --pretrained log/<run>/best.pt
    python train.py --resume log/<run>                # continue a stopped run
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ecgnet.config import config_from_dict, load_config, parse_override
from ecgnet.errors import EXIT_INTERRUPTED, EcgnetError, run_cli

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "config.json"

# CLI flag -> config key, for the keys people change most.
OVERRIDES = {"data_dir": str, "epochs": int, "batch_size": int, "lr": float, "seed": int, "run_name": str,
             "device": str, "task": str, "mode": str, "pretrained": str, "log_dir": str, "imbalance": str}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="JSON config (every key is documented in config/README.md; default: config/config.json)")
    for key, kind in OVERRIDES.items():
        p.add_argument("--" + key.replace("_", "-"), type=kind, dest=key, help=f"override config key '{key}'")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key (repeatable)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt, with its own config")
    p.add_argument("--overwrite", action="store_true", help="reuse an existing run directory, deleting its files")
    p.add_argument("--summary", action="store_true", help="print the model summary (torchsummary) and exit")
    p.add_argument("--no-test", action="store_true", help="skip the test-set evaluation after training")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p.parse_args(argv)


def main(argv) -> int:
    args = parse_args(argv)
    from ecgnet import engine
    from ecgnet.data import TASKS, load_splits, resolve_data_dir
    from ecgnet.metrics import format_report

    overrides = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    overrides.update(parse_override(s) for s in args.set)
    resume = None
    if args.resume:
        resume = engine.load_checkpoint(Path(args.resume) / "last.pt")
        allowed = {"epochs", "device", "data_dir"}
        if set(overrides) - allowed:
            raise EcgnetError(f"--resume continues a run with its own config; only {', '.join(sorted(allowed))} may be changed, not {', '.join(sorted(set(overrides) - allowed))}")
        # Runs saved before weight averaging existed trained without it.
        cfg = config_from_dict({"ema_decay": 0.0} | resume["config"] | overrides, source=f"{args.resume}/last.pt")
        run_dir = Path(args.resume)
    else:
        cfg = config_from_dict(overrides, source="command line", base=load_config(args.config))
    if args.summary:
        from torchsummary import summary
        from ecgnet.model import ECGNet
        summary(ECGNet(n_classes=TASKS[cfg.task].n_classes), (1, 187), device="cpu")
        return 0
    task = TASKS[cfg.task]
    data_dir = resolve_data_dir(cfg.data_dir, task)
    splits = load_splits(task, data_dir, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    if resume is None:
        run_dir = engine.make_run_dir(cfg, args.overwrite)
        cfg.run_name = run_dir.name
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    try:
        engine.train(cfg, splits, run_dir, resume)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if not args.no_test:
        metrics = engine.evaluate_checkpoint(run_dir / "best.pt", data_dir, cfg.device, cfg.eval_batch_size)
        print(f"\nTest set ({metrics['n']} beats, {data_dir}):\n" + format_report(metrics))
        print(f"\nwrote {run_dir}/metrics.json and confusion_matrix.png; TensorBoard: tensorboard --logdir {cfg.log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
