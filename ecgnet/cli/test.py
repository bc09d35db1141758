"""Evaluate a checkpoint on its task's held-out test set.

    ecgnet test --checkpoint log/<run>/best.pt [--data-dir DIR]

Prints the confusion matrix and per-class report; writes metrics.json and
confusion_matrix.png beside the checkpoint and logs them to the run's TensorBoard.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..constants import DEVICES

HELP = "evaluate a checkpoint on its test set"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a best.pt / last.pt written by ecgnet train")
    p.add_argument("--data-dir", help="folder with the task's CSVs (default: the one the checkpoint was trained on)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--batch-size", type=int, default=1024)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate
    from ..metrics import format_report
    from ..reporting import write_test_report
    from ..runtime import configure_process

    configure_process(0, args.device)
    metrics = evaluate(args.checkpoint, args.data_dir, args.device, args.batch_size)
    write_test_report(metrics, Path(args.checkpoint).parent)
    print(f"{metrics['task']} test set: {metrics['n']} beats from {metrics['data_dir']}\n")
    print(format_report(metrics))
    print(f"\nwrote metrics.json and confusion_matrix.png beside {args.checkpoint}")
    return 0
