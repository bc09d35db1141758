"""Inference throughput and single-beat latency of the predict path (ecgnet.inference.Predictor).

    python bench/inference.py --checkpoint log/mitbih-default/best.pt [--threads 2]

Throughput at batch 1, 64, 1024 and 8192 on real test beats; latency p50/p99 of one beat.
"""
from __future__ import annotations

import argparse
import statistics
import time

from common import data_dir, save, table

import numpy as np
import torch

from ecgnet.data import find_file, read_beats
from ecgnet.inference import Predictor


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="time budget per batch size")
    args = p.parse_args()
    predictor = Predictor(args.checkpoint, "cpu")
    torch.set_num_threads(args.threads)
    x, _ = read_beats(find_file(data_dir(), "mitbih_test"), 5)
    rows = []
    for batch in (1, 64, 1024, 8192):
        predictor.batch_size = batch
        chunk = x[:batch]
        predictor.probabilities(chunk)  # warm-up
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds or len(times) < 5:
            t = time.perf_counter()
            predictor.probabilities(chunk)
            times.append(time.perf_counter() - t)
        row = {"batch": batch, "beats_per_s": round(batch / statistics.median(times))}
        if batch == 1:
            row["p50_ms"] = round(1000 * float(np.percentile(times, 50)), 3)
            row["p99_ms"] = round(1000 * float(np.percentile(times, 99)), 3)
        rows.append(row)
        print(row, flush=True)
    print(f"\nInference, predict path (Predictor.probabilities), {args.threads} threads, median over >= {args.seconds:.0f} s per row\n")
    print(table(rows, ["batch", "beats_per_s", "p50_ms", "p99_ms"]))
    print(f"\nwrote {save('inference', {'threads': args.threads, 'rows': rows})}")


if __name__ == "__main__":
    main()
