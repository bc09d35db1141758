"""Evaluate a checkpoint on its task's held-out test set.

    python test.py --checkpoint log/<run>/best.pt [--data-dir DIR]

Prints the confusion matrix and per-class report; writes metrics.json and
confusion_matrix.png beside the checkpoint and logs them to the run's TensorBoard.
"""
from __future__ import annotations

import argparse
import sys

from ecgnet.errors import run_cli


def main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a best.pt / last.pt written by train.py")
    p.add_argument("--data-dir", help="folder with the task's CSVs (default: the one the checkpoint was trained on)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = p.parse_args(argv)
    from ecgnet.engine import evaluate_checkpoint
    from ecgnet.metrics import format_report

    metrics = evaluate_checkpoint(args.checkpoint, args.data_dir, args.device, args.batch_size)
    print(f"{metrics['task']} test set: {metrics['n']} beats from {metrics['data_dir']}\n")
    print(format_report(metrics))
    print(f"\nwrote metrics.json and confusion_matrix.png beside {args.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
