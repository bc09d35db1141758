"""Seconds to label whole 30-minute mitdb records with predict's record path.

    python bench/record_prediction.py --checkpoint log/mitbih-default/best.pt [--records 100 208 233]

Times reading, detection (GQRS), resampling and cutting, and classification separately.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import ROOT, save, table


from ecgnet.inference import Predictor
from ecgnet.preprocess import detect_r_peaks, rescale_positions, resample, segment_beats
from ecgnet.records import read_wfdb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--src", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--records", nargs="+", default=["100", "208", "233"])
    p.add_argument("--detector", default="gqrs")
    args = p.parse_args()
    predictor = Predictor.from_checkpoint(args.checkpoint, "cpu")
    rows = []
    for name in args.records:
        t0 = time.perf_counter()
        rec = read_wfdb(Path(args.src) / name)
        t1 = time.perf_counter()
        samples = detect_r_peaks(rec.signal, rec.fs, args.detector)
        t2 = time.perf_counter()
        cut = segment_beats(resample(rec.signal, rec.fs), rescale_positions(samples, rec.fs))
        t3 = time.perf_counter()
        predictor.predict_proba(cut.beats)
        t4 = time.perf_counter()
        rows.append({"record": name, "minutes": round(len(rec.signal) / rec.fs / 60, 1), "beats": len(cut.beats), "read_s": round(t1 - t0, 2),
                     "detect_s": round(t2 - t1, 2), "cut_s": round(t3 - t2, 2), "classify_s": round(t4 - t3, 2), "total_s": round(t4 - t0, 2)})
        print(rows[-1], flush=True)
    print(f"\nLabelling whole records ({args.detector} detector), median total {statistics.median(r['total_s'] for r in rows):.1f} s\n")
    print(table(rows, ["record", "minutes", "beats", "read_s", "detect_s", "cut_s", "classify_s", "total_s"]))
    print(f"\nwrote {save('record_prediction', {'detector': args.detector, 'rows': rows})}")


if __name__ == "__main__":
    main()
