"""Beat detection on all 48 MIT-BIH records against the reference .atr beat annotations.

    python bench/detection.py [--src ../shared/data/mitdb] [--methods gqrs xqrs paper]

Pooled sensitivity (Se = TP / (TP + FN)) and positive predictivity (+P = TP / (TP + FP))
with a 150 ms matching window (wfdb.processing.compare_annotations), per detector.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import ROOT, save, table

from wfdb import processing

from ecgnet.preprocess import DETECTORS, detect_r_peaks
from ecgnet.records import MITDB_RECORDS, read_beat_annotations, read_wfdb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--methods", nargs="+", default=list(DETECTORS))
    args = p.parse_args()
    totals = {m: {"tp": 0, "fp": 0, "fn": 0, "seconds": 0.0} for m in args.methods}
    per_record = []
    for name in MITDB_RECORDS:
        base = Path(args.src) / name
        rec = read_wfdb(base)
        ref, _ = read_beat_annotations(base)
        row = {"record": name, "beats": len(ref)}
        for m in args.methods:
            t = time.perf_counter()
            found = detect_r_peaks(rec.signal, rec.fs, m)
            totals[m]["seconds"] += time.perf_counter() - t
            c = processing.compare_annotations(ref, found, int(round(0.15 * rec.fs)))
            totals[m]["tp"] += c.tp
            totals[m]["fp"] += c.fp
            totals[m]["fn"] += c.fn
            row[m] = f"{c.tp / max(c.tp + c.fn, 1):.4f}/{c.tp / max(c.tp + c.fp, 1):.4f}"
        per_record.append(row)
        print(row, flush=True)
    rows = []
    for m, t in totals.items():
        rows.append({"detector": m, "TP": t["tp"], "FP": t["fp"], "FN": t["fn"], "Se_%": f"{100 * t['tp'] / (t['tp'] + t['fn']):.2f}",
                     "+P_%": f"{100 * t['tp'] / (t['tp'] + t['fp']):.2f}", "s_per_record": f"{t['seconds'] / len(MITDB_RECORDS):.1f}"})
    print("\nBeat detection, 48 mitdb records, 150 ms window, pooled\n")
    print(table(rows, ["detector", "TP", "FP", "FN", "Se_%", "+P_%", "s_per_record"]))
    print(f"\nwrote {save('detection', {'rows': rows, 'per_record': per_record})}")


if __name__ == "__main__":
    main()
