"""Do two ways of labelling a recording agree? ``label_record``'s beats and probabilities compared record by record.

    python bench/record_parity.py --checkout ../before --model mitbih-rr-ensemble --checkout-model mitbih-rr
    python bench/record_parity.py --backends            # ONNX Runtime against PyTorch, the default model

With ``--checkout DIR`` this checkout and another one (e.g. a git worktree of the code before a change to the record
path) label the MIT-BIH DS2 records with the same model (``--checkout-model``: its name there); with ``--backends`` this
checkout labels them on both backends. Prints, per pair, the beats compared, beats found by one side only, the largest
probability difference and the labels that differ; writes bench/results/record_parity.json (pairs not compared this
time are kept from the last run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, save, table

from ecgnet.signals.records import DS2

DRIVER = """
import sys, numpy as np
from pathlib import Path
from ecgnet.serving.batch import load_classifier
from ecgnet.serving.labelling import label_record
from ecgnet.signals.records import read_recording
model, backend, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
classifier = load_classifier(model, backend, "cpu", 0)
for record in sys.argv[4:]:
    t = label_record(classifier, read_recording(record))["table"]
    probs = np.stack([t[c] for c in t if c.startswith("p_")], 1)
    np.savez(out / (Path(record).name + ".npz"), sample=t["sample"], name=t["name"].astype(str), probs=probs)
"""


def label(checkout: Path, records: list[Path], model: str, backend: str, out: Path) -> None:
    """Each record labelled by ``label_record`` of ``checkout`` (a fresh process): samples, names, probabilities."""
    out.mkdir(parents=True)
    command = [sys.executable, "-c", DRIVER, model, backend, str(out), *map(str, records)]
    done = subprocess.run(command, cwd=checkout, env=os.environ | {"PYTHONPATH": str(checkout)}, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{checkout}: labelling with {model} failed: {done.stderr[-800:]}")


def compare(a: Path, b: Path, names: list[str]) -> dict:
    beats = only = differ = 0
    gap = 0.0
    for name in names:
        left, right = np.load(a / f"{name}.npz"), np.load(b / f"{name}.npz")
        shared, i, j = np.intersect1d(left["sample"], right["sample"], return_indices=True)
        beats, only = beats + len(shared), only + len(left["sample"]) + len(right["sample"]) - 2 * len(shared)
        if len(shared):
            gap = max(gap, float(np.abs(left["probs"][i] - right["probs"][j]).max()))
            differ += int((left["name"][i] != right["name"][j]).sum())
    return {"records": len(names), "beats compared": beats, "beats on one side only": only,
            "max probability difference": f"{gap:.1e}", "labels that differ": differ}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    p.add_argument("--model", default="mitbih-rr")
    p.add_argument("--checkout", type=Path, help="another ecgnet checkout to compare this one with")
    p.add_argument("--checkout-model", help="the model's name in that checkout (default: --model)")
    p.add_argument("--backends", action="store_true", help="compare ONNX Runtime with PyTorch in this checkout")
    args = p.parse_args()
    records = [args.mitdb / r for r in DS2]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.checkout:
            label(ROOT, records, args.model, "auto", tmp / "here")
            label(args.checkout.resolve(), records, args.checkout_model or args.model, "auto", tmp / "there")
            rows.append({"pair": f"this checkout vs {args.checkout} ({args.model})"} | compare(tmp / "here", tmp / "there", DS2))
        if args.backends:
            label(ROOT, records, args.model, "onnxruntime", tmp / "onnx")
            label(ROOT, records, args.model, "torch", tmp / "torch")
            rows.append({"pair": f"ONNX Runtime vs PyTorch ({args.model})"} | compare(tmp / "onnx", tmp / "torch", DS2))
    if not rows:
        raise SystemExit("nothing to compare: give --checkout DIR and/or --backends")
    print(table(rows, list(rows[0])))
    last = RESULTS / "record_parity.json"  # pairs not compared this time are kept from the last run
    kept = [r for r in json.loads(last.read_text())["rows"] if r["pair"] not in {n["pair"] for n in rows}] if last.exists() else []
    print(f"wrote {save('record_parity', {'rows': kept + rows})}")


if __name__ == "__main__":
    main()
