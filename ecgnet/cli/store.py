"""Write a sharded beat store: a config's training and validation beats as memory-mappable .npy shards.

    ecgnet store data/store --data-dir data                  # -> data/store/train, data/store/val
    ecgnet store data/store-pat --config config/interpatient.json --shard-beats 16384
    ecgnet train --set store=data/store                      # train from it with bounded memory
    torchrun --nproc_per_node 2 train.py --set store=data/store   # each rank reads its own shards

The split (seed, val_fraction, split_by, test_fraction of the config) is made here and kept
in the store, with the source folder and the test rows, so a model trained on the store is
tested on its own test set. Layout and format: ecgnet/data/store.py, docs/distributed.md.
"""
from __future__ import annotations

import argparse

SPLIT_KEYS = ("seed", "val_fraction", "split_by", "test_fraction")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..constants import DEFAULT_SHARD_BEATS

    p.add_argument("out", help="folder to create (it gets train/ and val/ stores)")
    p.add_argument("--config", help="JSON config whose task, data_dir and split keys are used (default: the built-in defaults)")
    p.add_argument("--data-dir", help="override config key 'data_dir'")
    p.add_argument("--task", help="override config key 'task'")
    p.add_argument("--seed", type=int, help="override config key 'seed' (the split's seed)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key (repeatable)")
    p.add_argument("--shard-beats", type=int, default=DEFAULT_SHARD_BEATS, help=f"beats per shard (default {DEFAULT_SHARD_BEATS:,})")


def run(args: argparse.Namespace) -> int:
    from ..config import Config, config_from_dict, load_config, parse_override
    from ..constants import TASKS
    from ..data.datasets import load_splits, resolve_data_dir
    from ..data.store import write_split_stores

    overrides = {k: v for k, v in (("data_dir", args.data_dir), ("task", args.task), ("seed", args.seed)) if v is not None}
    overrides.update(parse_override(s) for s in args.set)
    cfg = config_from_dict(overrides, source="command line", base=load_config(args.config) if args.config else Config())
    task = TASKS[cfg.task]
    splits = load_splits(task, resolve_data_dir(cfg.data_dir, task), cfg.val_fraction, cfg.test_fraction, cfg.seed,
                         by_patients=cfg.split_by == "patients")
    split = {key: getattr(cfg, key) for key in SPLIT_KEYS}
    train, val = write_split_stores(args.out, splits, task, split, args.shard_beats)
    for name, store in (("train", train), ("val", val)):
        print(f"wrote {store.path}: {len(store):,} beats in {len(store.shards)} shard(s)")
    print(f"train from it: ecgnet train --set store={args.out}")
    return 0
