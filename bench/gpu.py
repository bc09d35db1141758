"""The CUDA path, end to end: train the default config on a GPU, test, calibrate, predict, export.

    ECGNET_BENCH_DATA=data/gpu python bench/gpu.py [--epochs 60] [--out DIR]

Trains config/config.json's settings on the GPU (resident tensors, bf16 autocast), scores
best.pt on the test file (accuracy, macro-F1, ECE), times GPU inference at large batches
and one beat, exports best.pt to ONNX and compares ONNX Runtime (CPU) with the CUDA
predictor on the test beats. Prints a table; writes bench/results/gpu.json (and --out).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, data_dir, machine, save, table

from ecgnet.config import load_config
from ecgnet.data.beatfiles import read_beats
from ecgnet.data.datasets import find_file
from ecgnet.models.pretrained import resolve_checkpoint
from ecgnet.runtime import configure_process
from ecgnet.serving.export import export_onnx
from ecgnet.serving.inference import Predictor
from ecgnet.serving.onnx_backend import OnnxPredictor
from ecgnet.serving.scoring import evaluate
from ecgnet.training.trainer import train


def throughput(predictor: Predictor, beats: np.ndarray, batch: int, repeats: int = 20) -> tuple[float, float]:
    """Beats per second (median) and p50 latency in ms of ``predict_proba`` on ``batch`` beats."""
    chunk = beats[:batch] if batch <= len(beats) else np.resize(beats, (batch, beats.shape[1]))
    predictor.batch_size = max(batch, 1024)
    predictor.predict_proba(chunk)
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        predictor.predict_proba(chunk)
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times), 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--out", help="also copy the results JSON here")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark is for a GPU machine")
    configure_process(0, "cuda")
    folder = data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(ROOT / "config" / "config.json")
        cfg.data_dir, cfg.device, cfg.epochs, cfg.log_dir, cfg.run_name = str(folder), "cuda", args.epochs, tmp, "gpu"
        start = time.perf_counter()
        summary = train(cfg)
        wall = time.perf_counter() - start
        best = summary["run_dir"] / "best.pt"
        metrics = evaluate(best, folder, "cuda")
        beats, _ = read_beats(find_file(folder, "mitbih_test"))
        cuda = Predictor.from_checkpoint(best, "cuda")
        rows = [{"batch": b, **dict(zip(("beats_per_s", "p50_ms"), (round(v, 3) for v in throughput(cuda, beats, b))))}
                for b in (1, 1024, 8192, 65536)]
        onnx = OnnxPredictor(export_onnx(resolve_checkpoint(best), Path(tmp) / "gpu.onnx"))
        gap = float(np.abs(onnx.predict_proba(beats) - cuda.predict_proba(beats)).max())
        agree = float((onnx.predict(beats) == cuda.predict(beats)).mean())
    epochs = summary["history"]
    result = {"epochs": summary["epochs"], "best_epoch": summary["best_epoch"], "train_seconds": round(summary["train_seconds"], 1),
              "wall_seconds": round(wall, 1), "median_epoch_s": round(statistics.median(r["epoch_seconds"] for r in epochs), 2),
              "beats_per_s_train": round(statistics.median(r["beats_per_second"] for r in epochs)),
              "test_accuracy": round(metrics["accuracy"], 4), "test_macro_f1": round(metrics["macro_f1"], 4),
              "ece_uncalibrated": round(metrics["calibration"]["ece_uncalibrated"], 4), "ece": round(metrics["calibration"]["ece"], 4),
              "temperature": round(metrics["calibration"]["temperature"], 3),
              "onnx_cpu_vs_cuda_max_prob_gap": gap, "onnx_cpu_vs_cuda_same_class": agree, "inference": rows}
    print(json.dumps({k: v for k, v in result.items() if k != "inference"}, indent=1))
    print("\nCUDA inference (Predictor.predict_proba, bf16 autocast above one batch)\n")
    print(table(rows, ["batch", "beats_per_s", "p50_ms"]))
    path = save("gpu", result)
    if args.out:
        Path(args.out, "gpu.json").write_text(json.dumps(result | {"machine": machine()}, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
