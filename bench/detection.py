"""Beat detection on all 48 MIT-BIH records against the reference .atr beat annotations.

    python bench/detection.py [--src ../shared/data/mitdb] [--methods gqrs xqrs paper] [--jobs 2]

Pooled sensitivity (Se = TP / (TP + FN)) and positive predictivity (+P = TP / (TP + FP))
with a 150 ms matching window (wfdb.processing.compare_annotations), per detector.
"""
from __future__ import annotations

import argparse
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

from common import ROOT, save, table

from wfdb import processing

from ecgnet.preprocess import DETECTORS, detect_r_peaks
from ecgnet.records import MITDB_RECORDS, read_beat_annotations, read_wfdb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--methods", nargs="+", default=list(DETECTORS))
    p.add_argument("--jobs", type=int, default=2, help="records scored in parallel")
    args = p.parse_args()
    with Pool(args.jobs) as pool:
        results = pool.map(partial(score_record, src=Path(args.src), methods=args.methods), MITDB_RECORDS)
    totals = {m: {k: sum(r[m][k] for r in results) for k in ("tp", "fp", "fn", "seconds")} for m in args.methods}
    per_record = [{"record": r["record"], "beats": r["beats"]} | {m: f"{r[m]['se']:.4f}/{r[m]['pp']:.4f}" for m in args.methods} for r in results]
    for row in per_record:
        print(row)
    rows = []
    for m, t in totals.items():
        rows.append({"detector": m, "TP": t["tp"], "FP": t["fp"], "FN": t["fn"], "Se_%": f"{100 * t['tp'] / (t['tp'] + t['fn']):.2f}",
                     "+P_%": f"{100 * t['tp'] / (t['tp'] + t['fp']):.2f}", "s_per_record": f"{t['seconds'] / len(MITDB_RECORDS):.1f}"})
    print("\nBeat detection, 48 mitdb records, 150 ms window, pooled\n")
    print(table(rows, ["detector", "TP", "FP", "FN", "Se_%", "+P_%", "s_per_record"]))
    print(f"\nwrote {save('detection', {'rows': rows, 'per_record': per_record})}")


def score_record(name: str, src: Path, methods: list[str]) -> dict:
    base = src / name
    rec = read_wfdb(base)
    ref, _ = read_beat_annotations(base)
    out = {"record": name, "beats": len(ref)}
    for m in methods:
        t = time.perf_counter()
        found = detect_r_peaks(rec.signal, rec.fs, m)
        seconds = time.perf_counter() - t
        c = processing.compare_annotations(ref, found, int(round(0.15 * rec.fs)))
        out[m] = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "seconds": seconds,
                  "se": c.tp / max(c.tp + c.fn, 1), "pp": c.tp / max(c.tp + c.fp, 1)}
    return out


if __name__ == "__main__":
    main()
