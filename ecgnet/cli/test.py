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
    from ..models.pretrained import is_record_checkpoint, shipped_names

    if args.out is None and args.checkpoint in shipped_names():
        raise EcgnetError(f"'{args.checkpoint}' is a shipped model; say where the report goes with --out DIR")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    if is_record_checkpoint(args.checkpoint):
        return test_record_model(args, out)
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


def test_record_model(args: argparse.Namespace, out: Path) -> int:
    """A record-level model on PTB-XL's test fold: its figures printed and written to metrics.json."""
    import json

    from ..atomic import write_text
    from ..serving.scoring import evaluate_record_model

    metrics = evaluate_record_model(args.checkpoint, args.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"{metrics['task']} test fold: {metrics['n']} records from {metrics['data_dir']}")
    print(f"{'leads':<10}{'level':<9}{'AUC':>7}{'Se':>8}{'Sp':>8}{'PPV':>8}  threshold")
    for leads, f in metrics["figures"].items():
        for level in ("record", "patient"):
            t = f[level]
            print(f"{leads:<10}{level:<9}{t['roc_auc']:>7.3f}{100 * t['sensitivity']:>7.1f}%{100 * t['specificity']:>7.1f}%"
                  f"{100 * t['ppv']:>7.1f}%  {t['threshold']:.3f}")
    print(f"\nwrote metrics.json in {out}")
    return 0
