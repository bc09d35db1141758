"""Sharded beat stores: beats on disk in memory-mappable ``.npy`` shards, for data larger than memory.

A store is a folder::

    store.json                    format, task, classes, recipe, shards (name, beats, class counts), records
    shard-00000.beats.npy         float32 (n, 187)
    shard-00000.labels.npy        uint8 (n,)
    shard-00000.records.npy       int32 (n,): index into store.json's "records" (-1: no record names)
    shard-00000.rhythm.npy        float32 (n, k): the model's rhythm inputs (only when the source had them)
    SHA256SUMS                    sha256sum -c format, for every shard file

Why ``.npy`` and not WebDataset tar shards: a training job reads its shards from a local or
network file system, where ``np.load(mmap_mode="r")`` opens a shard without parsing or
copying it and needs nothing beyond NumPy; tar shards pay off when shards stream from object
storage over HTTP, which ecgnet does not do. Shard files are written atomically.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_bytes, write_text
from ..checksums import sha256_bytes, write_digests
from ..constants import BEAT_LENGTH, DEFAULT_SHARD_BEATS, Task
from ..errors import EcgnetError
from .datasets import PAPER_RECIPE, BeatDataset, Splits

STORE_FORMAT = "ecgnet-beat-store"
STORE_VERSION = 1
STORE_INDEX = "store.json"
FIELDS = {"beats": np.float32, "labels": np.uint8, "records": np.int32, "rhythm": np.float32}


class StoreWriter:
    """Append beats chunk by chunk; full shards go to disk as they fill, so memory stays at one shard.

    ``close()`` writes the last shard, ``store.json`` and ``SHA256SUMS``; ``meta`` is kept
    in store.json (e.g. how the beats were split, or that a store is a tiled scale test).
    """

    def __init__(self, out: str | Path, task: Task, shard_beats: int = DEFAULT_SHARD_BEATS, meta: dict | None = None) -> None:
        if shard_beats < 1:
            raise EcgnetError(f"shard size must be at least 1 beat, got {shard_beats}")
        self.out, self.task, self.shard_beats, self.meta = Path(out), task, shard_beats, dict(meta or {})
        if (self.out / STORE_INDEX).exists():
            raise EcgnetError(f"{self.out} already holds a beat store; choose another folder or remove it")
        self.out.mkdir(parents=True, exist_ok=True)
        self.pending: dict[str, list[np.ndarray]] = {name: [] for name in FIELDS}
        self.n_pending = 0
        self.shards: list[dict] = []
        self.digests: dict[str, str] = {}
        self.records: dict[str, int] = {}
        self.rhythm: bool | None = None

    def add(self, data: BeatDataset) -> None:
        """Append ``data``'s beats (with its records and rhythm inputs, when it has them)."""
        has_rhythm = data.rhythm is not None
        if self.rhythm is None:
            self.rhythm = has_rhythm
        elif self.rhythm != has_rhythm:
            raise EcgnetError(f"{self.out}: every chunk of a store must carry rhythm inputs, or none")
        codes = np.full(len(data), -1, dtype=np.int32)  # -1: the source names no records (the Kaggle CSVs)
        if data.records is not None:
            names, inverse = np.unique(np.asarray(data.records, dtype=str), return_inverse=True)
            codes = np.array([self.records.setdefault(n, len(self.records)) for n in names], dtype=np.int32)[inverse]
        chunk = {"beats": data.x.reshape(-1, BEAT_LENGTH).numpy(), "labels": data.y.numpy(), "records": codes,
                 "rhythm": data.rhythm.numpy() if has_rhythm else None}
        start = 0
        while start < len(data):
            take = min(self.shard_beats - self.n_pending, len(data) - start)
            for name, values in chunk.items():
                if values is not None:
                    self.pending[name].append(values[start:start + take])
            self.n_pending += take
            start += take
            if self.n_pending == self.shard_beats:
                self._flush()

    def _flush(self) -> None:
        name = f"shard-{len(self.shards):05d}"
        arrays = {k: np.concatenate(v).astype(FIELDS[k], copy=False) for k, v in self.pending.items() if v}
        for key, values in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(values))
            data = buffer.getvalue()
            write_bytes(self.out / f"{name}.{key}.npy", data)
            self.digests[f"{name}.{key}.npy"] = sha256_bytes(data)
        counts = np.bincount(arrays["labels"], minlength=self.task.n_classes)
        self.shards.append({"name": name, "beats": self.n_pending, "class_counts": counts.tolist()})
        self.pending = {k: [] for k in FIELDS}
        self.n_pending = 0

    def close(self) -> "BeatStore":
        """Write the last shard and the index; the finished store, opened."""
        if self.n_pending:
            self._flush()
        if not self.shards:
            raise EcgnetError(f"{self.out}: no beats to store")
        index = {"format": STORE_FORMAT, "version": STORE_VERSION, "task": self.task.name,
                 "class_names": list(self.task.class_names), "beat_length": BEAT_LENGTH, "rhythm": bool(self.rhythm),
                 "n_beats": sum(s["beats"] for s in self.shards), "shards": self.shards,
                 "records": list(self.records), "meta": self.meta}
        write_digests(self.out, self.digests)
        write_text(self.out / STORE_INDEX, json.dumps(index, indent=1) + "\n")
        return BeatStore(self.out)


@dataclass
class BeatStore:
    """A store opened for reading: its index in memory, shards memory-mapped on demand."""
    path: Path
    index: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        try:
            index = json.loads((self.path / STORE_INDEX).read_text())
        except FileNotFoundError:
            raise EcgnetError(f"{self.path}: not a beat store (no {STORE_INDEX}); write one with 'ecgnet store'") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise EcgnetError(f"{self.path / STORE_INDEX}: unreadable ({e.__class__.__name__}); write the store again") from None
        if not isinstance(index, dict) or index.get("format") != STORE_FORMAT or index.get("version") != STORE_VERSION:
            raise EcgnetError(f"{self.path / STORE_INDEX}: not a version-{STORE_VERSION} ecgnet beat store; write it again with 'ecgnet store'")
        self.index = index

    @property
    def shards(self) -> list[dict]:
        return self.index["shards"]

    @property
    def has_rhythm(self) -> bool:
        return bool(self.index["rhythm"])

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.index["class_names"])

    @property
    def meta(self) -> dict:
        return self.index.get("meta", {})

    def __len__(self) -> int:
        return int(self.index["n_beats"])

    def class_counts(self) -> np.ndarray:
        return np.sum([s["class_counts"] for s in self.shards], axis=0)

    def read(self, i: int) -> dict[str, np.ndarray]:
        """Shard ``i``'s arrays, memory-mapped (nothing is read until used)."""
        shard = self.shards[i]
        arrays = {}
        for key in FIELDS:
            if key == "rhythm" and not self.has_rhythm:
                continue
            path = self.path / f"{shard['name']}.{key}.npy"
            try:
                arrays[key] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as e:
                raise EcgnetError(f"{path}: missing or unreadable shard file ({e.__class__.__name__}); write the store again") from None
            if len(arrays[key]) != shard["beats"] or arrays[key].dtype != FIELDS[key]:
                raise EcgnetError(f"{path}: holds {len(arrays[key])} {arrays[key].dtype} rows, the index says {shard['beats']} "
                                  f"{np.dtype(FIELDS[key])}; the store is damaged, write it again")
        self.check_values(shard["name"], arrays)
        return arrays

    def check_values(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Refuse a shard with beats of the wrong length, non-finite samples or labels outside the classes."""
        beats, labels = arrays["beats"], arrays["labels"]
        where = f"{self.path}/{name}"
        if beats.ndim != 2 or beats.shape[1] != BEAT_LENGTH:
            raise EcgnetError(f"{where}.beats.npy: beats of shape {beats.shape[1:]}, not ({BEAT_LENGTH},); write the store again")
        if len(labels) and int(labels.max()) >= len(self.class_names):
            raise EcgnetError(f"{where}.labels.npy: label {int(labels.max())} for {len(self.class_names)} classes; the store is damaged, write it again")
        if not np.isfinite(beats).all():
            raise EcgnetError(f"{where}.beats.npy: non-finite samples; the store is damaged, write it again")

    def dataset(self, shard_ids: list[int] | None = None) -> BeatDataset:
        """The beats of ``shard_ids`` (default: all) as one resident dataset, in store order."""
        parts = [self.read(i) for i in (range(len(self.shards)) if shard_ids is None else shard_ids)]
        codes = np.concatenate([p["records"] for p in parts])
        records = np.array(self.index["records"], dtype=str)[codes] if len(codes) and codes.min() >= 0 else None
        return BeatDataset(np.concatenate([p["beats"] for p in parts]), np.concatenate([p["labels"] for p in parts]).astype(np.int64),
                           self.class_names, np.concatenate([p["rhythm"] for p in parts]) if self.has_rhythm else None, records)


def write_split_stores(out: str | Path, splits: Splits, task: Task, split: dict, shard_beats: int = DEFAULT_SHARD_BEATS) -> tuple[BeatStore, BeatStore]:
    """Write ``splits``' training and validation beats as the stores ``out/train`` and ``out/val``.

    ``split`` (seed, val_fraction, split_by, test_fraction) says how they were drawn; it,
    the source folder, the recipe and the test rows go into the training store's meta, so
    that a model trained on the store is tested on its own test set.
    """
    meta = {"split": split, "data_dir": str(splits.data_dir), "recipe": splits.recipe,
            "test_indices": None if splits.test_indices is None else splits.test_indices.tolist()}
    stores = []
    for name, data in (("train", splits.train), ("val", splits.val)):
        writer = StoreWriter(Path(out) / name, task, shard_beats, meta if name == "train" else {"split": split})
        writer.add(data)
        stores.append(writer.close())
    return stores[0], stores[1]


def store_splits(path: str | Path, task: Task) -> Splits:
    """The splits of a store folder from ``write_split_stores``: training beats stay on disk, validation is loaded."""
    train, val = BeatStore(Path(path) / "train"), BeatStore(Path(path) / "val")
    if train.index["task"] != task.name or val.index["task"] != task.name:
        raise EcgnetError(f"{path} holds {train.index['task']} beats, the config's task is {task.name}; set 'task' to match")
    if train.index["rhythm"] != val.index["rhythm"]:
        raise EcgnetError(f"{path}: its train and val stores differ in rhythm inputs; write the store again")
    meta = train.meta
    test_indices = meta.get("test_indices")
    return Splits(train, val.dataset(), None, Path(meta.get("data_dir", path)), None if test_indices is None else np.asarray(test_indices),
                  meta.get("recipe", dict(PAPER_RECIPE)), split=meta.get("split"))
