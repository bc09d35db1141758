"""Training throughput: ecgnet's engine vs the usual Dataset/DataLoader loop, same batch size.

    python bench/train_throughput.py [--epochs 3] [--batch-size N (default: the config's)] [--threads 2]

All contenders train the paper's net with Adam on the full reference training file. The
naive loop is written the common way: a pandas-backed Dataset whose __getitem__ returns
one beat, collated by DataLoader(batch_size, shuffle=True), with torch.optim.Adam's and
the C library's defaults. It runs twice, first: with the net written the usual way
(``PlainECGNet``: nn.Conv1d, nn.MaxPool1d, as reimplementations of the paper write it),
which is what users compare against, then with ecgnet's ECGNet, which isolates the data
path. The engine then runs with the process settings train.py applies
(engine.setup_torch) and its optimizer (engine.make_optimizer). Reports the median epoch.
"""
from __future__ import annotations

import argparse
import statistics
import time

from common import data_dir, save, table

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecgnet.config import Config
from ecgnet.data import find_file, read_beats
from ecgnet.engine import make_optimizer, setup_torch, train_one_epoch, weight_average
from ecgnet.model import ECGNet, count_parameters


class NaiveBeatDataset(Dataset):
    """The common way: a DataFrame, one row turned into tensors per __getitem__."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, i):
        row = self.frame.iloc[i].to_numpy()
        return torch.tensor(row[:-1], dtype=torch.float32).unsqueeze(0), torch.tensor(int(row[-1]))


class PlainResidualBlock(nn.Module):
    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 5, padding=2)
        self.conv2 = nn.Conv1d(channels, channels, 5, padding=2)
        self.pool = nn.MaxPool1d(5, stride=2)

    def forward(self, x):
        return self.pool(F.relu(x + self.conv2(F.relu(self.conv1(x)))))


class PlainECGNet(nn.Module):
    """The paper's net as reimplementations usually write it: Conv1d layers on (B, C, L) tensors.

    Same layers and parameter count as ecgnet's ECGNet, without its CPU training paths.
    """

    def __init__(self, n_classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv1d(1, 32, 5, padding=2)
        self.blocks = nn.Sequential(*[PlainResidualBlock() for _ in range(5)])
        self.head = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.Linear(32, n_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).flatten(1))


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per contender (after a warm-up of 30 steps)")
    p.add_argument("--batch-size", type=int, default=Config().batch_size)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-naive", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x, y = read_beats(find_file(data_dir(), "mitbih_train"), 5)
    n = len(y)
    rows = []

    if not args.skip_naive:
        frame = pd.DataFrame(np.column_stack([x, y]))
        for name, net in (("naive loop, plain nn.Conv1d net", PlainECGNet), ("naive loop, ecgnet's ECGNet", ECGNet)):
            torch.manual_seed(0)
            model = net()
            assert count_parameters(model) == 55_013
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            loader = DataLoader(NaiveBeatDataset(frame), batch_size=args.batch_size, shuffle=True)
            warm = DataLoader(NaiveBeatDataset(frame.iloc[: 30 * args.batch_size]), batch_size=args.batch_size, shuffle=True)
            naive_epoch(model, opt, warm)
            times = []
            for _ in range(args.epochs):
                t = time.perf_counter()
                naive_epoch(model, opt, loader)
                times.append(time.perf_counter() - t)
            rows.append({"contender": f"{name} (no augmentation)", "epoch_s": statistics.median(times),
                         "epochs_s": [round(t, 2) for t in times]})
            print(rows[-1], flush=True)

    cfg = Config(batch_size=args.batch_size, num_threads=args.threads)
    setup_torch(args.threads, "cpu")
    for augment in (True, False):
        torch.manual_seed(0)
        model = ECGNet()
        opt = make_optimizer(model, cfg)
        sched = torch.optim.lr_scheduler.StepLR(opt, 10000, 0.75)
        gen = torch.Generator().manual_seed(0)
        xt, yt = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)
        run_cfg = Config(**(cfg.to_dict() | {"augment": augment}))
        ema = weight_average(model, run_cfg.ema_decay)  # as in training: the average is updated every step
        train_one_epoch(model, opt, sched, xt[: 30 * args.batch_size], yt[: 30 * args.batch_size], gen, run_cfg, 0, ema=ema)  # warm-up
        times = []
        for _ in range(args.epochs):
            t = time.perf_counter()
            train_one_epoch(model, opt, sched, xt, yt, gen, run_cfg, 0, ema=ema)
            times.append(time.perf_counter() - t)
        rows.append({"contender": f"ecgnet engine ({'with' if augment else 'no'} augmentation)", "epoch_s": statistics.median(times),
                     "epochs_s": [round(t, 2) for t in times]})
        print(rows[-1], flush=True)

    usual = rows[0]["epoch_s"] if not args.skip_naive else None
    for r in rows:
        r["beats_per_s"] = round(n / r["epoch_s"])
        r["vs_usual"] = f"{usual / r['epoch_s']:.2f}x" if usual else ""
        r["epoch_s"] = round(r["epoch_s"], 2)
    print(f"\nTraining throughput, {n} beats per epoch, batch {args.batch_size}, {args.threads} threads, median of {args.epochs} epochs\n")
    print(table(rows, ["contender", "epoch_s", "beats_per_s", "vs_usual"]))
    print(f"\nwrote {save('train_throughput', {'beats_per_epoch': n, 'batch_size': args.batch_size, 'threads': args.threads, 'rows': rows})}")


if __name__ == "__main__":
    main()
