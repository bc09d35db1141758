"""Beat detection on all 48 MIT-BIH records against the reference .atr beat annotations.

    python bench/detection.py [--src ../shared/data/mitdb] [--methods gqrs sleepecg ...] [--jobs 2]

Pooled sensitivity (Se = TP / (TP + FN)) and positive predictivity (+P = TP / (TP + FP))
with a 150 ms matching window (wfdb.processing.compare_annotations), per detector:
'all' scores every detection; 'EC57' leaves out detections inside ventricular flutter
episodes ('[' ... ']' annotations, in record 207), as AAMI EC57 does. Rows of detectors
not run this time are kept from bench/results/detection.json, so detectors can be added
one command at a time; s_per_record is the median time per 30-min record.
"""
from __future__ import annotations

import argparse
import json
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, save, table
from wfdb import processing

from ecgnet.constants import DETECTORS
from ecgnet.signals.preprocess import detect_r_peaks
from ecgnet.signals.records import MITDB_RECORDS, flutter_episodes, read_beat_annotations, read_wfdb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--methods", nargs="+", default=list(DETECTORS))
    p.add_argument("--jobs", type=int, default=2, help="records scored in parallel")
    args = p.parse_args()
    with Pool(args.jobs) as pool:
        results = pool.map(partial(score_record, src=Path(args.src), methods=args.methods), MITDB_RECORDS)
    totals = {(m, scope): {k: sum(r[m][scope][k] for r in results) for k in ("tp", "fp", "fn")}
              | {"seconds": float(np.median([r[m]["seconds"] for r in results]))}
              for m in args.methods for scope in ("all", "EC57")}
    per_record = [{"record": r["record"], "beats": r["beats"]} | {m: f"{r[m]['all']['se']:.4f}/{r[m]['all']['pp']:.4f}" for m in args.methods} for r in results]
    rows = []
    for (m, scope), t in totals.items():
        rows.append({"detector": m, "scored": scope, "TP": t["tp"], "FP": t["fp"], "FN": t["fn"], "Se_%": f"{100 * t['tp'] / (t['tp'] + t['fn']):.2f}",
                     "+P_%": f"{100 * t['tp'] / (t['tp'] + t['fp']):.2f}", "s_per_record": f"{t['seconds']:.2f}"})
    previous = RESULTS / "detection.json"
    if previous.exists():
        kept = [r for r in json.loads(previous.read_text())["rows"] if r["detector"] not in args.methods]
        rows = kept + rows
    print("\nBeat detection, 48 mitdb records, 150 ms window, pooled\n")
    print(table(rows, ["detector", "scored", "TP", "FP", "FN", "Se_%", "+P_%", "s_per_record"]))
    print(f"\nwrote {save('detection', {'rows': rows, 'per_record': per_record})}")


def score_record(name: str, src: Path, methods: list[str]) -> dict:
    base = src / name
    rec = read_wfdb(base)
    ref, _ = read_beat_annotations(base)
    outside = np.ones(len(rec.signal), dtype=bool)
    for start, end in flutter_episodes(base):
        outside[start:end + 1] = False
    out = {"record": name, "beats": len(ref)}
    for m in methods:
        t = time.perf_counter()
        found = detect_r_peaks(rec.signal, rec.fs, m)
        out[m] = {"seconds": time.perf_counter() - t}
        for scope, keep in (("all", np.ones(len(found), bool)), ("EC57", outside[found])):
            c = processing.compare_annotations(ref[outside[ref]] if scope == "EC57" else ref, found[keep], int(round(0.15 * rec.fs)))
            out[m][scope] = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "se": c.tp / max(c.tp + c.fn, 1), "pp": c.tp / max(c.tp + c.fp, 1)}
    return out


if __name__ == "__main__":
    main()
