"""Training throughput: ecgnet's trainer (fast and plain CPU paths) vs the usual Dataset/DataLoader loop.

    python bench/train_throughput.py [--epochs 3] [--batch-size N (default: the config's)] [--threads 2]

All contenders train the paper's net with Adam on the full reference training file, same
batch size. The usual loop is written the common way: a pandas-backed Dataset whose
__getitem__ returns one beat, collated by DataLoader(batch_size, shuffle=True), with
torch.optim.Adam's and the C library's defaults. Then ecgnet's trainer epoch
(trainer.train_one_epoch, augmentation and weight averaging on, with the process
settings the CLI applies) runs with ``cpu_fast_paths`` on and off, epochs alternating
so both see the same machine state: the same-run A/B of ecgnet.models.fastpath.
Reports the median epoch of each.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from common import data_dir, save, table
from torch.utils.data import DataLoader, Dataset

from ecgnet.config import Config
from ecgnet.constants import TASKS
from ecgnet.data.beatfiles import read_beats
from ecgnet.data.datasets import BeatDataset, find_file
from ecgnet.models.model import ECGNet
from ecgnet.runtime import configure_process
from ecgnet.training.distributed import World
from ecgnet.training.sources import ResidentSource
from ecgnet.training.trainer import TrainingRun, train_one_epoch


class NaiveBeatDataset(Dataset):
    """The common way: a DataFrame, one row turned into tensors per __getitem__."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, i):
        row = self.frame.iloc[i].to_numpy()
        return torch.tensor(row[:-1], dtype=torch.float32).unsqueeze(0), torch.tensor(int(row[-1]))


def naive_epoch(model, optimizer, loader) -> int:
    model.train()
    seen = 0
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(yb)
    return seen


def time_usual_loop(x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int) -> list[float]:
    frame = pd.DataFrame(np.column_stack([x, y]))
    torch.manual_seed(0)
    model = ECGNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    naive_epoch(model, opt, DataLoader(NaiveBeatDataset(frame.iloc[: 30 * batch_size]), batch_size=batch_size, shuffle=True))
    loader = DataLoader(NaiveBeatDataset(frame), batch_size=batch_size, shuffle=True)
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        naive_epoch(model, opt, loader)
        times.append(time.perf_counter() - t)
    return times


def time_trainer(x: np.ndarray, y: np.ndarray, batch_size: int, threads: int, epochs: int) -> dict[str, list[float]]:
    """Epoch times of the trainer with the fast path on and off, epochs alternating."""
    data, cpu = BeatDataset(x, y, TASKS["mitbih"].class_names), torch.device("cpu")
    runs, sources = {}, {}
    for fast in (True, False):
        cfg = Config(batch_size=batch_size, num_threads=threads, cpu_fast_paths=fast)
        runs[fast] = run = TrainingRun.create(cfg, cpu)
        train_one_epoch(run, ResidentSource(data.subset(np.arange(30 * batch_size)), cfg, cpu, World(), run.generator, False))  # warm-up
        sources[fast] = ResidentSource(data, cfg, cpu, World(), run.generator, False)
    times = {True: [], False: []}
    for _ in range(epochs):
        for fast, run in runs.items():
            t = time.perf_counter()
            train_one_epoch(run, sources[fast])
            times[fast].append(time.perf_counter() - t)
            print(f"trainer, fast path {'on' if fast else 'off'}: {times[fast][-1]:.1f} s", flush=True)
    return {"ecgnet trainer, CPU fast path (default)": times[True], "ecgnet trainer, plain nn.Conv1d path": times[False]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per contender (after a warm-up of 30 steps)")
    p.add_argument("--batch-size", type=int, default=Config().batch_size)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-naive", action="store_true", help="only the trainer's A/B")
    args = p.parse_args()
    x, y = read_beats(find_file(data_dir(), "mitbih_train"), 5)
    timed = {}
    if not args.skip_naive:
        torch.set_num_threads(args.threads)
        timed["usual loop: DataLoader + nn.Conv1d net (no augmentation)"] = time_usual_loop(x, y, args.batch_size, args.epochs)
    configure_process(args.threads, "cpu")
    timed |= time_trainer(x, y, args.batch_size, args.threads, args.epochs)
    rows = [{"contender": name, "epoch_s": statistics.median(t), "epochs_s": [round(v, 2) for v in t]} for name, t in timed.items()]
    usual = rows[0]["epoch_s"] if not args.skip_naive else None
    plain = rows[-1]["epoch_s"]
    for r in rows:
        r["beats_per_s"] = round(len(y) / r["epoch_s"])
        r["vs_usual"] = f"{usual / r['epoch_s']:.2f}x" if usual else ""
        r["vs_plain_path"] = f"{plain / r['epoch_s']:.2f}x"
        r["epoch_s"] = round(r["epoch_s"], 2)
    print(f"\nTraining throughput, {len(y)} beats per epoch, batch {args.batch_size}, {args.threads} threads, median of {args.epochs} epochs\n")
    print(table(rows, ["contender", "epoch_s", "beats_per_s", "vs_usual", "vs_plain_path"]))
    print(f"\nwrote {save('train_throughput', {'beats_per_epoch': len(y), 'batch_size': args.batch_size, 'threads': args.threads, 'rows': rows})}")


if __name__ == "__main__":
    main()
