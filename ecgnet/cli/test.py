"""Evaluate a checkpoint on its task's held-out test set.

    ecgnet test --checkpoint log/<run>/best.pt [--data-dir DIR]
    ecgnet test --checkpoint mitbih --data-dir data --out out/mitbih   # a shipped model

Prints the confusion matrix, the per-class report, the calibration (ECE before and after
temperature scaling) and the share of beats kept with their accuracy at each minimum
confidence; writes metrics.json, confusion_matrix.png, reliability.png and coverage.png beside
the checkpoint (or in --out) and logs them to the run's TensorBoard. A rhythm model is scored as
``predict --record`` labels: its S calls in irregular rhythm (atrial fibrillation) are made N.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..constants import DEVICES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a best.pt / last.pt, a model file or a shipped model name")
    p.add_argument("--out", help="folder for the report (default: beside the checkpoint; required for shipped models)")
    p.add_argument("--data-dir", help="folder with the task's CSVs (default: the one the checkpoint was trained on)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--batch-size", type=int, default=1024)


def run(args: argparse.Namespace) -> int:
    from ..metrics import format_report
    from ..runtime import configure_process
    from ..serving.scoring import evaluate
    from ..training.reporting import write_test_report

    configure_process(0, args.device)
    from ..errors import EcgnetError
    from ..models.pretrained import shipped_names

    if args.out is None and args.checkpoint in shipped_names():
        raise EcgnetError(f"'{args.checkpoint}' is a shipped model; say where the report goes with --out DIR")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    metrics = evaluate(args.checkpoint, args.data_dir, args.device, args.batch_size)
    out.mkdir(parents=True, exist_ok=True)
    write_test_report(metrics, out)
    print(f"{metrics['task']} test set: {metrics['n']} beats from {metrics['data_dir']}")
    if metrics["irregular_rhythm_share"] is not None:
        print(f"scored as 'predict --record' labels: S calls in irregular rhythm (as in atrial fibrillation; "
              f"{100 * metrics['irregular_rhythm_share']:.1f}% of the beats) made N")
    print()
    print(format_report(metrics))
    print(f"\nwrote metrics.json, confusion_matrix.png, reliability.png, coverage.png in {out}")
    return 0
