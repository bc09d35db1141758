"""Seconds to label whole 30-minute mitdb records end to end, per detector, and a folder of them in a pool.

    python bench/record_prediction.py [--checkpoint mitbih-rr] [--records 100 208 233] [--detectors gqrs sleepecg]
    python bench/record_prediction.py --folder ../shared/data/mitdb --workers 2 --detectors gqrs sleepecg

Per record: reading, labelling (detection, cutting, rhythm features, classification:
``labelling.label_record``) and writing beats.csv, with the detection alone timed too.
With --folder: wall time of ``ecgnet predict --record FOLDER --workers N`` (all recordings,
summary.csv), interpreter start included.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, save, table

from ecgnet.runtime import configure_process
from ecgnet.serving.inference import Predictor
from ecgnet.serving.labelling import label_record, write_beat_table
from ecgnet.signals.preprocess import detect_r_peaks
from ecgnet.signals.records import read_wfdb


def time_record(predictor: Predictor, path: Path, detector: str, out: Path) -> dict:
    t0 = time.perf_counter()
    rec = read_wfdb(path)
    t1 = time.perf_counter()
    result = label_record(predictor, rec, detector)
    t2 = time.perf_counter()
    write_beat_table(result, out / "beats.csv")
    t3 = time.perf_counter()
    detect_r_peaks(rec.signal, rec.fs, detector)
    detect = time.perf_counter() - t3
    return {"record": path.name, "detector": detector, "minutes": round(len(rec.signal) / rec.fs / 60, 1),
            "beats": len(result["beats"]), "read_s": round(t1 - t0, 3), "detect_s": round(detect, 3),
            "label_s": round(t2 - t1, 3), "write_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3)}


def time_folder(folder: str, detector: str, workers: int, checkpoint: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "ecgnet", "predict", "--record", folder, "--out", out, "--workers", str(workers),
                               "--detector", detector, "--checkpoint", checkpoint], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        rows = (Path(out) / "summary.csv").read_text().splitlines()[1:]
    return {"detector": detector, "workers": workers, "records": len(rows), "failed": sum(",failed," in r for r in rows),
            "exit_code": done.returncode, "wall_s": round(seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="mitbih-rr")
    p.add_argument("--src", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--records", nargs="+", default=["100", "208", "233"])
    p.add_argument("--detectors", nargs="+", default=["gqrs", "sleepecg"])
    p.add_argument("--folder", help="also time labelling every recording in this folder")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    configure_process(0, "cpu")
    predictor = Predictor.from_checkpoint(args.checkpoint, "cpu")
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for detector in args.detectors:
            for name in args.records:
                rows.append(time_record(predictor, Path(args.src) / name, detector, Path(out)))
                print(rows[-1], flush=True)
    print(f"\nLabelling whole records end to end ({args.checkpoint})\n")
    print(table(rows, ["record", "detector", "minutes", "beats", "read_s", "detect_s", "label_s", "write_s", "total_s"]))
    for detector in args.detectors:
        print(f"{detector}: median total {statistics.median(r['total_s'] for r in rows if r['detector'] == detector):.2f} s")
    folders = [time_folder(args.folder, d, args.workers, args.checkpoint) for d in args.detectors] if args.folder else []
    if folders:
        print(f"\nA folder of recordings ({args.folder}), ecgnet predict --record, {args.workers} workers\n")
        print(table(folders, ["detector", "workers", "records", "failed", "exit_code", "wall_s"]))
    print(f"\nwrote {save('record_prediction', {'checkpoint': args.checkpoint, 'rows': rows, 'folders': folders})}")


if __name__ == "__main__":
    main()
