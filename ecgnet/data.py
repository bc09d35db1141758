"""Heartbeat CSVs in the Kaggle layout: finding, reading, validating, caching, splitting.

Each row holds 187 samples (125 Hz, scaled to [0, 1], zero-padded) and the class
label as the 188th value; no header. Files may be .csv, .csv.gz or .csv.xz.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import lzma
import math
import os
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from .errors import EcgnetError
from .model import BEAT_LENGTH

N_COLUMNS = BEAT_LENGTH + 1
SUFFIXES = (".csv", ".csv.gz", ".csv.xz")
BUNDLED_DIR = Path(__file__).parent / "bundled"
CACHE_VERSION = 1
KAGGLE_URL = "https://www.kaggle.com/datasets/shayanfazeli/heartbeat"


@dataclass(frozen=True)
class Task:
    name: str
    class_names: tuple[str, ...]
    train_stems: tuple[str, ...]      # files the training split is drawn from
    test_stems: tuple[str, ...] = ()  # a separate test file; empty = test split drawn from train_stems

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


TASKS = {
    "mitbih": Task("mitbih", ("N", "S", "V", "F", "Q"), ("mitbih_train",), ("mitbih_test",)),
    "ptbdb": Task("ptbdb", ("normal", "MI"), ("ptbdb_normal", "ptbdb_abnormal")),
}


# ---------------------------------------------------------------- reading and validation

def open_text(path: Path) -> io.TextIOBase:
    """Open a .csv, .csv.gz or .csv.xz file as text."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rt", newline="")
    if name.endswith(".xz"):
        return lzma.open(path, "rt", newline="")
    return open(path, "rt", newline="")


_CORRUPT = (EOFError, lzma.LZMAError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise EcgnetError(f"{path}: file not found")
    if path.is_dir():
        raise EcgnetError(f"{path}: is a directory, expected a CSV file (.csv, .csv.gz or .csv.xz)")


def _expected(columns: tuple[int, ...]) -> str:
    return " or ".join(f"{c} ({BEAT_LENGTH} samples{' + label' if c > BEAT_LENGTH else ''})" for c in columns)


def _diagnose(path: Path, columns: tuple[int, ...]) -> EcgnetError:
    """Scan the file row by row and describe the first problem (slow; only on failure)."""
    width = None
    try:
        with open_text(path) as f:
            for i, row in enumerate(csv.reader(f), start=1):
                if len(row) not in columns or (width is not None and len(row) != width):
                    hint = " (a ragged row?)" if width is not None else ""
                    return EcgnetError(f"{path}, row {i}: {len(row)} values, expected {_expected(columns)}{hint}")
                width = len(row)
                for j, cell in enumerate(row, start=1):
                    try:
                        value = float(cell)
                    except ValueError:
                        hint = "; the files have no header row, remove it" if i == 1 else ""
                        return EcgnetError(f"{path}, row {i}, column {j}: {cell.strip()!r} is not a number{hint}")
                    if not math.isfinite(value):
                        return EcgnetError(f"{path}, row {i}, column {j}: value {cell.strip()} is not finite; remove or repair the row")
    except _CORRUPT as e:
        return EcgnetError(f"{path}: file is truncated or corrupt ({e.__class__.__name__}: {e}); download or decompress it again")
    return EcgnetError(f"{path}: could not be parsed as a numeric CSV of {_expected(columns)} columns")


def read_table(path: Path, columns: tuple[int, ...] = (N_COLUMNS,)) -> np.ndarray:
    """Parse a headerless numeric CSV whose rows all have one of ``columns`` values; finite values only."""
    _check_path(path)
    try:
        table = pd.read_csv(path, header=None, dtype=np.float64, engine="c").to_numpy()
    except pd.errors.EmptyDataError:
        raise EcgnetError(f"{path}: file is empty; expected rows of {_expected(columns)} values") from None
    except _CORRUPT as e:
        raise EcgnetError(f"{path}: file is truncated or corrupt ({e.__class__.__name__}); download or decompress it again") from None
    except PermissionError:
        raise EcgnetError(f"{path}: permission denied") from None
    except (ValueError, pd.errors.ParserError):
        raise _diagnose(path, columns) from None
    if table.ndim != 2 or table.shape[1] not in columns or not np.isfinite(table).all():
        raise _diagnose(path, columns)
    if len(table) == 0:
        raise EcgnetError(f"{path}: file has no rows")
    return table


def split_labels(table: np.ndarray, source: str, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, 188) table -> beats float32 (n, 187), labels int64 (n,); labels must be integer classes."""
    labels = table[:, -1]
    not_integer = np.flatnonzero(labels != np.round(labels))
    if len(not_integer):
        i = not_integer[0]
        raise EcgnetError(f"{source}, row {i + 1}: label {labels[i]:g} is not an integer class")
    labels = labels.astype(np.int64)
    check_labels(labels, source, n_classes)
    return np.ascontiguousarray(table[:, :-1], dtype=np.float32), labels


def check_labels(labels: np.ndarray, source: str, n_classes: int | None) -> None:
    if n_classes is None:
        return
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        i = bad[0]
        raise EcgnetError(f"{source}, row {i + 1}: label {labels[i]} is outside this task's classes 0..{n_classes - 1}; is this the right file for the task?")


def cache_dir() -> Path:
    """Where parsed arrays are cached: $ECGNET_CACHE_DIR, else $XDG_CACHE_HOME/ecgnet or ~/.cache/ecgnet."""
    if os.environ.get("ECGNET_CACHE_DIR"):
        return Path(os.environ["ECGNET_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecgnet"


def _cache_path(path: Path) -> Path:
    stat = path.stat()
    key = f"v{CACHE_VERSION}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return cache_dir() / f"{path.name}.{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def read_beats(path: str | Path, n_classes: int | None = None, use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read a Kaggle-layout beat CSV, validated, via the parse cache.

    Returns beats as float32 (n, 187) and labels as int64 (n,). The cache is keyed by
    the file's absolute path, size and mtime, so an edited file is parsed again.
    With ``n_classes``, labels outside 0..n_classes-1 are an error.
    """
    path = Path(path)
    _check_path(path)
    cached = _cache_path(path) if use_cache else None
    beats = labels = None
    if cached is not None and cached.exists():
        try:
            with np.load(cached) as z:
                beats, labels = z["beats"], z["labels"]
        except (OSError, ValueError, KeyError, zlib.error, EOFError):
            beats = labels = None  # a damaged cache entry is rebuilt from the source
    if beats is None:
        beats, labels = split_labels(read_table(path), str(path))
        if cached is not None:
            _write_cache(cached, beats, labels)
    check_labels(labels, str(path), n_classes)
    return beats, labels


def _write_cache(target: Path, beats: np.ndarray, labels: np.ndarray) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, beats=beats, labels=labels)
        os.replace(tmp, target)
    except OSError as e:  # a read-only home must not stop training; it only costs speed
        print(f"warning: cannot write parse cache in {target.parent} ({e.strerror}); set ECGNET_CACHE_DIR to a writable folder", file=sys.stderr)


def write_beats_csv(path: str | Path, beats: np.ndarray, labels: np.ndarray | None = None, fmt: str = "%.9g") -> None:
    """Write beats (and labels as column 188) in the Kaggle layout; compression by suffix.

    The default '%.9g' round-trips float32 exactly; the Kaggle files use '%.18e'.
    """
    table = beats if labels is None else np.column_stack([beats, labels])
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt=fmt, delimiter=",")
    path = Path(path)
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "wt") as f:
        f.write(buffer.getvalue())


# ---------------------------------------------------------------- datasets and splits

class BeatDataset(Dataset):
    """Beats as one resident float32 tensor (n, 1, 187) with int64 labels (n,).

    The training engine indexes batches straight from these tensors; ``__getitem__``
    exists for compatibility with ordinary DataLoader code.
    """

    def __init__(self, beats: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, class_names: tuple[str, ...]) -> None:
        self.x = torch.as_tensor(beats, dtype=torch.float32).reshape(-1, 1, BEAT_LENGTH)
        self.y = torch.as_tensor(labels, dtype=torch.int64)
        self.class_names = tuple(class_names)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def subset(self, indices: np.ndarray) -> "BeatDataset":
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return BeatDataset(self.x[idx], self.y[idx], self.class_names)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y.numpy(), minlength=len(self.class_names))


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of row indices -> (kept, held_out), each sorted."""
    idx = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None  # sklearn needs 2 per class
    kept, held = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(kept), np.sort(held)


def find_file(data_dir: str | Path, stem: str) -> Path | None:
    """``data_dir/stem`` with the first existing suffix among .csv, .csv.gz, .csv.xz."""
    for suffix in SUFFIXES:
        candidate = Path(data_dir) / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def resolve_data_dir(data_dir: str | Path, task: Task, quiet: bool = False) -> Path:
    """The folder to read ``task``'s CSVs from: ``data_dir``, or the bundled subset if they are missing."""
    stems = task.train_stems + task.test_stems
    if all(find_file(data_dir, s) for s in stems):
        return Path(data_dir)
    missing = ", ".join(s + ".csv" for s in stems if not find_file(data_dir, s))
    if not quiet:
        print(f"note: {missing} not found in {data_dir}/; using the small bundled subset in {BUNDLED_DIR} "
              f"(a demo: figures on it are not comparable to the paper). For the full data, download {KAGGLE_URL}, "
              f"unpack it into data/ (or pass --data-dir DIR).", file=sys.stderr)
    return BUNDLED_DIR


def load_files(data_dir: Path, stems: tuple[str, ...], task: Task) -> BeatDataset:
    beats, labels = [], []
    for stem in stems:
        path = find_file(data_dir, stem)
        if path is None:
            raise EcgnetError(f"{data_dir}/{stem}.csv not found (also looked for .csv.gz, .csv.xz); pass the folder holding it with --data-dir")
        b, y = read_beats(path, n_classes=task.n_classes)
        beats.append(b)
        labels.append(y)
    return BeatDataset(np.concatenate(beats), np.concatenate(labels), task.class_names)


@dataclass
class Splits:
    """Train / validation / test beats of one task, and where they came from."""
    train: BeatDataset
    val: BeatDataset
    test: BeatDataset | None
    data_dir: Path
    test_indices: np.ndarray | None = None  # row indices into the concatenated files, for split-from-train tasks


def load_splits(task: Task, data_dir: Path, val_fraction: float, test_fraction: float, seed: int, with_test: bool = False) -> Splits:
    """Train/val split of the training file(s); the test set only when asked (test.py).

    For tasks without a test file (PTB), a stratified test split is held out first,
    then validation is carved from the rest, both seeded.
    """
    full = load_files(data_dir, task.train_stems, task)
    test_idx = None
    if task.test_stems:
        pool = np.arange(len(full))
    else:
        pool, test_idx = stratified_split(full.y.numpy(), test_fraction, seed)
    train_pos, val_pos = stratified_split(full.y.numpy()[pool], val_fraction, seed)
    test = None
    if with_test:
        test = load_files(data_dir, task.test_stems, task) if task.test_stems else full.subset(test_idx)
    return Splits(full.subset(pool[train_pos]), full.subset(pool[val_pos]), test, data_dir, test_idx)
