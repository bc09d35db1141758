"""Rebuild ecgnet/bundled/ (the small real subset used out of the box and by the tests) and samples/.

    python tools/make_bundled.py --src ../shared/data/heartbeat

Stratified, seeded subsets of the full Kaggle-layout CSVs, written with '%.9g'
(exact for float32) and xz-compressed. Sample beats come from the test files only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.io

from ecgnet.constants import TASKS
from ecgnet.data.beatfiles import read_beats, write_beats_csv
from ecgnet.data.datasets import find_file, stratified_split

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"mitbih_train": 2600, "mitbih_test": 650, "ptbdb_normal": 700, "ptbdb_abnormal": 200}


def subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n >= len(labels):
        return np.arange(len(labels))
    _, picked = stratified_split(labels, n / len(labels), seed)
    return picked


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="folder with the full CSVs")
    args = p.parse_args()
    out = ROOT / "ecgnet" / "bundled"
    out.mkdir(exist_ok=True)
    for stem, n in SIZES.items():
        x, y = read_beats(find_file(args.src, stem))
        idx = subset(y, n, seed=0)
        write_beats_csv(out / f"{stem}.csv.xz", x[idx], y[idx])
        print(f"{stem}: {len(idx)} of {len(y)} rows, classes {np.bincount(y[idx]).tolist()}")

    # samples/: two real test beats per class (MIT-BIH) and two per class (PTB, from the bundled test split's pool)
    samples = ROOT / "samples"
    samples.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    x, y = read_beats(find_file(args.src, "mitbih_test"))
    pick = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, replace=False) for c in range(5)])
    write_beats_csv(samples / "mitbih_beats.csv", x[pick], y[pick])
    np.save(samples / "mitbih_beats.npy", x[pick])
    scipy.io.savemat(samples / "mitbih_beats.mat", {"data": x[pick].astype(np.float64)})
    xs, ys = [], []
    for c, stem in enumerate(TASKS["ptbdb"].train_stems):
        xp, _ = read_beats(find_file(args.src, stem))
        xs.append(xp[rng.choice(len(xp), 3, replace=False)])
        ys += [c] * 3
    write_beats_csv(samples / "ptbdb_beats.csv", np.concatenate(xs), np.array(ys))
    print(f"samples: {len(pick)} MIT-BIH beats (csv with labels, npy and mat without), {len(ys)} PTB beats")


if __name__ == "__main__":
    main()
