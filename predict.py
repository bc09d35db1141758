"""Classify heartbeats with a trained checkpoint.

    python predict.py --checkpoint log/<run>/best.pt samples/mitbih_beats.csv
    python predict.py --checkpoint log/<run>/best.pt samples/mitbih_beats.npy --json

Files hold one or many beats: rows of 187 samples (125 Hz, [0, 1], zero-padded),
optionally with the true label as a 188th value (.csv/.csv.gz/.csv.xz, .npy, .mat).
"""
from __future__ import annotations

import argparse
import json
import sys

from ecgnet.errors import run_cli


def main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a best.pt / last.pt written by train.py")
    p.add_argument("files", nargs="+", help="beat files")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = p.parse_args(argv)
    from ecgnet.inference import Predictor, load_beats_file

    predictor = Predictor(args.checkpoint, args.device)
    results = []
    for path in args.files:
        beats, labels = load_beats_file(path)
        for i, pred in enumerate(predictor.predict(beats)):
            row = {"file": path, "beat": i + 1, "class": pred.label, "name": pred.name, "probability": round(pred.probability, 6),
                   "probabilities": dict(zip(predictor.class_names, (round(v, 6) for v in pred.probabilities)))}
            if labels is not None:
                true = int(labels[i])
                row["true_class"] = true
                row["true_name"] = predictor.class_names[true] if true < len(predictor.class_names) else str(true)
            results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'file':<28}{'beat':>5}  {'predicted':<12}{'prob':>7}  true")
    for r in results:
        true = r.get("true_name", "")
        mark = "" if not true else ("  ok" if true == r["name"] else "  MISS")
        print(f"{r['file'][-28:]:<28}{r['beat']:>5}  {r['class']} {r['name']:<10}{r['probability']:>7.3f}  {true}{mark}")
    if any("true_class" in r for r in results):
        known = [r for r in results if "true_class" in r]
        print(f"\n{sum(r['true_class'] == r['class'] for r in known)}/{len(known)} correct")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
