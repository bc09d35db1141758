"""Scale test of the sharded beat store: one epoch over >= 20 million beats with bounded memory.

    python bench/store_scale.py --out /tmp/scale [--tiles 254] [--batch-size 1024] [--threads 2]

A SCALE TEST, NOT A DATASET: the store holds the reference MIT-BIH training beats tiled
``--tiles`` times (254 x 78,831 = 20.0 M beats, 15 GB), so that the epoch reads as much as
a data set of that size would; its store.json says so. Then, each in its own process
(peak RSS from wait4), with the same config and batch size:

- resident: ``train.py`` on the reference training file held in memory, ``--resident-epochs`` epochs;
- store:    ``train.py --set store=OUT`` for one epoch over the tiled store.

Prints epoch time, beats/s (median epoch) and peak RSS of each, and the throughput ratio.
``--paths resident`` re-measures one path and keeps the other's row from bench/results/store_scale.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS, ROOT, data_dir, save, table

from ecgnet.constants import TASKS
from ecgnet.data.datasets import load_splits
from ecgnet.data.store import BeatStore, StoreWriter
from ecgnet.models.checkpoint import load_checkpoint

TASK = TASKS["mitbih"]
PATHS = ("resident", "store")  # the reference file held in memory; the tiled store
SPLIT = {"seed": 0, "val_fraction": 0.1, "split_by": "beats", "test_fraction": 0.2}


def write_tiled_store(out: Path, tiles: int) -> BeatStore:
    """The reference training split tiled ``tiles`` times (train/) and its validation split once (val/)."""
    if (out / "train" / "store.json").exists():
        return BeatStore(out / "train")
    splits = load_splits(TASK, data_dir(), SPLIT["val_fraction"], SPLIT["test_fraction"], SPLIT["seed"])
    label = f"SCALE TEST: the reference training beats tiled {tiles}x, not a data set"
    writer = StoreWriter(out / "train", TASK, meta={"scale_test": label, "split": SPLIT, "data_dir": str(splits.data_dir)})
    start = time.perf_counter()
    for tile in range(tiles):
        writer.add(splits.train)
        print(f"\rwriting tile {tile + 1}/{tiles}", end="", flush=True)
    store = writer.close()
    print(f"\nwrote {len(store):,} beats in {len(store.shards)} shards in {time.perf_counter() - start:.0f} s")
    val = StoreWriter(out / "val", TASK, meta={"split": SPLIT})
    val.add(splits.val)
    val.close()
    return store


def timed_training(args: list[str], run_dir: Path) -> dict:
    """Run train.py in a child process: wall time, peak RSS (wait4) and the run's per-epoch history."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, "--no-test", "--overwrite",
                              "--log-dir", str(run_dir.parent), "--run-name", run_dir.name], cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train.py {' '.join(args)} failed")
    history = load_checkpoint(run_dir / "last.pt")["history"]
    return {"wall_s": time.perf_counter() - start, "peak_rss_mb": usage.ru_maxrss / 1024, "history": history}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for the tiled store and the runs (needs ~15 GB at 254 tiles)")
    p.add_argument("--tiles", type=int, default=254)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resident-epochs", type=int, default=3)
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="paths to measure (the others' rows are kept)")
    args = p.parse_args()
    store = write_tiled_store(args.out, args.tiles)
    common = ["--batch-size", str(args.batch_size), "--set", f"num_threads={args.threads}", "--set", "patience=0"]
    commands = {"resident": [*common, "--data-dir", str(data_dir()), "--epochs", str(args.resident_epochs)],
                "store": [*common, "--set", f"store={args.out}", "--epochs", "1"]}
    previous = RESULTS / "store_scale.json"
    kept = {r["path"]: r for r in json.loads(previous.read_text())["rows"]} if previous.exists() else {}
    rows = []
    for path in PATHS:
        if path not in args.paths:
            rows.append(kept[path])
            continue
        r = timed_training(commands[path], args.out / "runs" / path)
        rate = statistics.median(h["beats_per_second"] for h in r["history"])
        rows.append({"path": path, "epochs": len(r["history"]), "beats_per_epoch": round(rate * r["history"][0]["epoch_seconds"]),
                     "epoch_s": round(statistics.median(h["epoch_seconds"] for h in r["history"]), 1),
                     "beats_per_s": round(rate), "peak_rss_mb": round(r["peak_rss_mb"])})
    for r in rows:
        r["vs_resident"] = f"{r['beats_per_s'] / rows[0]['beats_per_s']:.3f}"
    print(f"\nStore scale test, batch {args.batch_size}, {args.threads} threads\n")
    print(table(rows, ["path", "epochs", "beats_per_epoch", "epoch_s", "beats_per_s", "peak_rss_mb", "vs_resident"]))
    print(f"\nwrote {save('store_scale', {'batch_size': args.batch_size, 'threads': args.threads, 'store': str(args.out), 'rows': rows, 'store_meta': store.meta})}")


if __name__ == "__main__":
    main()
