"""Datasets of one task: finding its files, the resident beat tensors, and the train/val/test splits."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from .beatfiles import read_beats
from .constants import BEAT_CSV_SUFFIXES, BEAT_LENGTH, KAGGLE_URL, Task
from .errors import EcgnetError

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).parent / "bundled"


class BeatDataset(Dataset):
    """Beats as one resident float32 tensor (n, 1, 187) with int64 labels (n,).

    The trainer indexes batches straight from these tensors; ``__getitem__`` exists for
    ordinary DataLoader code.
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
    for suffix in BEAT_CSV_SUFFIXES:
        candidate = Path(data_dir) / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def resolve_data_dir(data_dir: str | Path, task: Task) -> Path:
    """The folder to read ``task``'s CSVs from: ``data_dir``, or the bundled subset if they are missing."""
    stems = task.train_stems + task.test_stems
    if all(find_file(data_dir, s) for s in stems):
        return Path(data_dir)
    missing = ", ".join(s + ".csv" for s in stems if not find_file(data_dir, s))
    log.warning("note: %s not found in %s/; using the small bundled subset in %s (a demo: figures on it are not "
                "comparable to the paper). For the full data, download %s, unpack it into data/ (or pass --data-dir DIR).",
                missing, data_dir, BUNDLED_DIR, KAGGLE_URL)
    return BUNDLED_DIR


def load_files(data_dir: Path, stems: tuple[str, ...], task: Task) -> BeatDataset:
    """The beats of ``stems`` in ``data_dir``, concatenated in that order."""
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
    """Train/val split of the training file(s); the test set only when asked.

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
    test = load_test_set(task, data_dir, test_idx, full) if with_test else None
    return Splits(full.subset(pool[train_pos]), full.subset(pool[val_pos]), test, data_dir, test_idx)


def load_test_set(task: Task, data_dir: Path, test_indices: np.ndarray | None, full: BeatDataset | None = None,
                  expected_rows: int | None = None, source: str = "checkpoint") -> BeatDataset:
    """The held-out test beats of ``task``: its test file, or ``test_indices`` rows of its training files.

    ``expected_rows`` (the training files' row count when the split was made) guards
    against drawing the recorded rows from different data.
    """
    if task.test_stems:
        return load_files(data_dir, task.test_stems, task)
    full = full if full is not None else load_files(data_dir, task.train_stems, task)
    if expected_rows is not None and len(full) != expected_rows:
        raise EcgnetError(f"{source} was trained on {expected_rows} {task.name} beats but {data_dir} holds {len(full)}; "
                          "pass the data it was trained on with --data-dir")
    return full.subset(np.asarray(test_indices))
