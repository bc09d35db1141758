"""Inference throughput and single-beat latency of the predict path (ecgnet.inference.Predictor).

    python bench/inference.py --checkpoint log/mitbih-default/best.pt [--threads 2]

Throughput at batch 1, 64, 1024 and 8192 on real test beats, with the CPU fast path
(the frozen graph of ecgnet.fastpath, the default) and without it (the eager plain
model), the two alternating per round; latency p50/p99 of one beat.
"""
from __future__ import annotations

import argparse
import statistics
import time

from common import data_dir, save, table

import numpy as np

from ecgnet.beatfiles import read_beats
from ecgnet.data import find_file
from ecgnet.inference import Predictor
from ecgnet.runtime import configure_process


def time_calls(predictor: Predictor, chunk: np.ndarray, seconds: float) -> list[float]:
    predictor.predict_proba(chunk)  # warm-up (builds the frozen graph on first use)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t = time.perf_counter()
        predictor.predict_proba(chunk)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="time budget per batch size and path")
    args = p.parse_args()
    configure_process(args.threads, "cpu")
    predictors = {path: Predictor.from_checkpoint(args.checkpoint, "cpu", fast=path == "fast") for path in ("fast", "plain")}
    x, _ = read_beats(find_file(data_dir(), "mitbih_test"), 5)
    rows = []
    for batch in (1, 64, 1024, 8192):
        row = {"batch": batch}
        for path, predictor in predictors.items():
            predictor.batch_size = batch
            times = time_calls(predictor, x[:batch], args.seconds)
            row[f"{path}_beats_per_s"] = round(batch / statistics.median(times))
            if batch == 1:
                row[f"{path}_p50_ms"] = round(1000 * float(np.percentile(times, 50)), 3)
                row[f"{path}_p99_ms"] = round(1000 * float(np.percentile(times, 99)), 3)
        row["fast_vs_plain"] = f"{row['fast_beats_per_s'] / row['plain_beats_per_s']:.2f}x"
        rows.append(row)
        print(row, flush=True)
    print(f"\nInference, predict path (Predictor.predict_proba), {args.threads} threads, median over >= {args.seconds:.0f} s per cell\n")
    print(table(rows, ["batch", "fast_beats_per_s", "plain_beats_per_s", "fast_vs_plain", "fast_p50_ms", "plain_p50_ms", "fast_p99_ms"]))
    print(f"\nwrote {save('inference', {'threads': args.threads, 'rows': rows})}")


if __name__ == "__main__":
    main()
