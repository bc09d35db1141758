"""Inference throughput and single-beat latency: PyTorch predict path and ONNX Runtime.

    python bench/inference.py --checkpoint mitbih [--threads 2]

Throughput at batch 1, 64, 1024 and 8192 on real test beats, for three paths, one after
the other per batch size: PyTorch with the CPU fast path (the frozen TorchScript graph of
ecgnet.models.fastpath, the default of Predictor), PyTorch eager ("plain"), and ONNX Runtime
(the checkpoint exported with ecgnet.serving.export, run by ecgnet.serving.onnx_backend with the same
thread count); latency p50/p99 of one beat.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import data_dir, save, table

from ecgnet.data.beatfiles import read_beats
from ecgnet.data.datasets import find_file
from ecgnet.models.pretrained import resolve_checkpoint
from ecgnet.runtime import configure_process
from ecgnet.serving.export import export_onnx
from ecgnet.serving.inference import Predictor
from ecgnet.serving.onnx_backend import OnnxPredictor


def time_calls(predictor: Predictor | OnnxPredictor, chunk: np.ndarray, seconds: float) -> list[float]:
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
    with tempfile.TemporaryDirectory() as tmp:
        predictors["onnx"] = OnnxPredictor(export_onnx(resolve_checkpoint(args.checkpoint), Path(tmp) / "model.onnx"), args.threads)
    x, _ = read_beats(find_file(data_dir(), "mitbih_test"), 5)
    rows = []
    for batch in (1, 64, 1024, 8192):
        row = {"batch": batch}
        for path, predictor in predictors.items():
            predictor.batch_size = batch  # the torch predictor's chunk size; ONNX Runtime runs any batch in one call
            times = time_calls(predictor, x[:batch], args.seconds)
            row[f"{path}_beats_per_s"] = round(batch / statistics.median(times))
            if batch == 1:
                row[f"{path}_p50_ms"] = round(1000 * float(np.percentile(times, 50)), 3)
                row[f"{path}_p99_ms"] = round(1000 * float(np.percentile(times, 99)), 3)
        row["fast_vs_plain"] = f"{row['fast_beats_per_s'] / row['plain_beats_per_s']:.2f}x"
        row["onnx_vs_fast"] = f"{row['onnx_beats_per_s'] / row['fast_beats_per_s']:.2f}x"
        rows.append(row)
        print(row, flush=True)
    print(f"\nInference (predict_proba), {args.threads} threads, median over >= {args.seconds:.0f} s per cell\n")
    print(table(rows, ["batch", "fast_beats_per_s", "plain_beats_per_s", "onnx_beats_per_s", "fast_vs_plain", "onnx_vs_fast",
                       "fast_p50_ms", "plain_p50_ms", "onnx_p50_ms", "fast_p99_ms", "onnx_p99_ms"]))
    print(f"\nwrote {save('inference', {'threads': args.threads, 'rows': rows})}")


if __name__ == "__main__":
    main()
