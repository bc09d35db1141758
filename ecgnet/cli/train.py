"""Train the Kachuee et al. ECG beat classifier, then evaluate the best checkpoint on the test set.

    ecgnet train                                          # config/config.json, data in data/
    ecgnet train --data-dir ../shared/data/heartbeat --epochs 30
    ecgnet train --config config/ptbdb_transfer.json --mode frozen --pretrained log/<run>/best.pt
    ecgnet train --resume log/<run>                       # continue a stopped run
    ecgnet train --config config/interpatient.json --folds 5   # 5 folds of patients: their ensemble, + the linear model
    torchrun --nproc_per_node 2 train.py --epochs 30      # data-parallel (DDP): gloo on CPU, NCCL on CUDA
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EcgnetError, TrainingInterrupted

if TYPE_CHECKING:
    from ..config import Config

DEFAULT_CONFIG = Path("config") / "config.json"

# CLI flag -> config key, for the keys people change most.
OVERRIDES = {"data_dir": str, "epochs": int, "batch_size": int, "lr": float, "seed": int, "run_name": str,
             "device": str, "task": str, "mode": str, "pretrained": str, "log_dir": str, "imbalance": str, "folds": int}
RESUMABLE = {"epochs", "device", "data_dir", "store"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON config (every key is documented in config/README.md; default: config/config.json "
                                    "when it exists, else the built-in defaults)")
    for key, kind in OVERRIDES.items():
        p.add_argument("--" + key.replace("_", "-"), type=kind, dest=key, help=f"override config key '{key}'")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key (repeatable)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt, with its own config")
    p.add_argument("--overwrite", action="store_true", help="reuse an existing run directory, deleting its files "
                                                             "(with --folds: keeping folds finished with the same config)")
    p.add_argument("--summary", action="store_true", help="print the model summary (torchsummary) and exit")
    p.add_argument("--no-test", action="store_true", help="skip the test-set evaluation after training")


def resolve_config(args: argparse.Namespace, resume: dict | None) -> "Config":
    """The run's config: the file (or the resumed run's own) with the command line's overrides."""
    from ..config import Config, config_from_dict, load_config, parse_override

    overrides = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    overrides.update(parse_override(s) for s in args.set)
    if resume is not None:
        if set(overrides) - RESUMABLE:
            raise EcgnetError(f"--resume continues a run with its own config; only {', '.join(sorted(RESUMABLE))} may be changed, "
                              f"not {', '.join(sorted(set(overrides) - RESUMABLE))}")
        # Runs saved before weight averaging existed trained without it.
        return config_from_dict({"ema_decay": 0.0} | resume["config"] | overrides, source=f"{args.resume}/last.pt")
    if args.config:
        base = load_config(args.config)
    else:
        base = load_config(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else Config()
    return config_from_dict(overrides, source="command line", base=base)


def print_summary(cfg: "Config") -> None:
    """torchsummary's table of ``cfg``'s model; a rhythm model is fed rhythm inputs of ones (torchsummary passes one
    input), a template model beats of two channels (beat and template)."""
    import torch
    from torchsummary import summary

    from ..constants import BEAT_LENGTH, TASKS
    from ..models.registry import create_model

    class WithRhythm(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x, x.new_ones(len(x), self.model.rhythm_dim) if self.model.rhythm_dim else None)

    model = create_model(cfg.model, TASKS[cfg.task].n_classes)
    summary(WithRhythm(model), (2 if model.template else 1, BEAT_LENGTH), device="cpu")


def run(args: argparse.Namespace) -> int:
    from ..metrics import format_report
    from ..models.checkpoint import load_checkpoint
    from ..runtime import configure_process
    from ..serving.scoring import evaluate
    from ..training.reporting import write_test_report
    from ..training.runs import train

    resume = load_checkpoint(Path(args.resume) / "last.pt") if args.resume else None
    cfg = resolve_config(args, resume)
    if args.summary:
        print_summary(cfg)
        return 0
    configure_process(cfg.num_threads, cfg.device)
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 alone speaks and tests
    if not main_rank:
        logging.getLogger("ecgnet").setLevel(logging.WARNING)
    try:
        summary = train(cfg, args.resume, resume, overwrite=args.overwrite)
    except TrainingInterrupted as e:
        e.resume_command = (f"{args.prog} --resume {e.run_dir}" if not cfg.folds else
                            "the same command with --overwrite (folds already finished with the same config are kept)")
        raise
    if not args.no_test and main_rank:
        run_dir = summary["run_dir"]
        metrics = evaluate(run_dir / "best.pt", summary["data_dir"], cfg.device, cfg.eval_batch_size)
        write_test_report(metrics, run_dir)
        print(f"\nTest set ({metrics['n']} beats, {metrics['data_dir']}):\n" + format_report(metrics))
        print(f"\nwrote {run_dir}/metrics.json and confusion_matrix.png; TensorBoard: tensorboard --logdir {cfg.log_dir}")
    return 0
