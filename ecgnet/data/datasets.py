"""Datasets of one task: finding its files, the resident beat tensors, and the train/val/test splits.

Beside a beat CSV, ``ecgnet prepare`` writes ``<stem>_index.csv`` with the record and
sample of every row and, for mitdb, the rhythm features of each beat; when present,
the dataset carries both (the Kaggle CSVs have no such file).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..atomic import write_text
from ..checksums import verify_listed
from ..constants import BEAT_CSV_SUFFIXES, BEAT_LENGTH, KAGGLE_URL, Task
from ..errors import EcgnetError
from ..signals.context import BeatContext
from ..signals.fibrillation import irregular_in_records
from ..signals.records import patients_of
from ..signals.rhythm import RHYTHM_FEATURES, check_rhythm, rhythm_inputs
from ..signals.template import record_templates, stack_template
from .beatfiles import read_beats

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "bundled"
PAPER_RECIPE = {"before_r_s": 0.0}  # beats start at their R peak, as in the paper and the Kaggle CSVs


def recipe_path(data_dir: Path, task: Task) -> Path:
    return Path(data_dir) / f"{task.name}_recipe.json"


def read_recipe(data_dir: Path, task: Task) -> dict:
    """How ``task``'s beats in ``data_dir`` were cut (``<task>_recipe.json`` from ``ecgnet prepare``; else the paper's)."""
    path = recipe_path(data_dir, task)
    if not path.exists():
        return dict(PAPER_RECIPE)
    try:
        recipe = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EcgnetError(f"{path}: unreadable recipe file ({e.__class__.__name__}); prepare the data again or remove it") from None
    before = recipe.get("before_r_s", 0.0) if isinstance(recipe, dict) else None
    if not isinstance(before, (int, float)) or isinstance(before, bool) or not 0 <= before <= 1:
        raise EcgnetError(f"{path}: 'before_r_s' must be a number of seconds in [0, 1]; prepare the data again")
    return recipe | {"before_r_s": float(before)}


def write_recipe(out: Path, task: Task, recipe: dict) -> None:
    write_text(recipe_path(out, task), json.dumps(PAPER_RECIPE | recipe, indent=2) + "\n")


class BeatDataset(Dataset):
    """Beats as one resident float32 tensor (n, 1, 187) with int64 labels (n,).

    Optionally the model's rhythm inputs ``rhythm`` (n, 5, from ``rhythm.rhythm_inputs``),
    the record of each beat ``records`` (n,) and whether the rhythm around it is irregular
    as in atrial fibrillation ``irregular`` (n,), which evaluation uses as ``predict --record``
    does. ``targets`` (n, n_classes), when set, are the probabilities a student learns instead of the labels
    (a teacher's, ``ecgnet.training.distill``). The trainer indexes batches straight from these tensors;
    ``__getitem__`` exists for ordinary DataLoader code.
    """

    def __init__(self, beats: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, class_names: tuple[str, ...],
                 rhythm: np.ndarray | torch.Tensor | None = None, records: np.ndarray | None = None,
                 irregular: np.ndarray | None = None, targets: torch.Tensor | None = None) -> None:
        x = torch.as_tensor(beats, dtype=torch.float32)  # (n, channels, L) is kept: beats and their templates
        self.x = x if x.ndim == 3 else x.reshape(-1, 1, BEAT_LENGTH)
        self.y = torch.as_tensor(labels, dtype=torch.int64)
        self.class_names = tuple(class_names)
        self.rhythm = None if rhythm is None else torch.as_tensor(rhythm, dtype=torch.float32)
        self.records = None if records is None else np.asarray(records)
        self.irregular = None if irregular is None else np.asarray(irregular, bool)
        self.targets = targets

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def subset(self, indices: np.ndarray) -> "BeatDataset":
        idx = torch.as_tensor(indices, dtype=torch.int64)
        rows = np.asarray(indices)
        return BeatDataset(self.x[idx], self.y[idx], self.class_names, None if self.rhythm is None else self.rhythm[idx],
                           None if self.records is None else self.records[rows], None if self.irregular is None else self.irregular[rows],
                           None if self.targets is None else self.targets[idx])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y.numpy(), minlength=len(self.class_names))

    @property
    def has_rhythm(self) -> bool:
        return self.rhythm is not None

    def context(self) -> BeatContext:
        """The beats in context as a model reads them (``ecgnet.signals.context``): rhythm inputs, each beat's record
        template, whether its rhythm is irregular."""
        return BeatContext.of_records(self.x[:, 0].numpy(), None if self.rhythm is None else self.rhythm.numpy(), self.records,
                                      self.irregular)

    def with_templates(self, source: str) -> "BeatDataset":
        """These beats with their record's template as a second channel (n, 2, L), ``ecgnet.signals.template``."""
        self.check_records(source)
        beats = self.x[:, 0].numpy()
        return BeatDataset(stack_template(beats, record_templates(beats, self.records)), self.y, self.class_names, self.rhythm,
                           self.records, self.irregular, self.targets)

    def check_records(self, source: str) -> None:
        """Refuse, with one line, beats without their record for a template model."""
        if self.records is None:
            raise EcgnetError(f"{source}: this model compares each beat with its record's median beat (model 'kachuee_rrt'), "
                              "but the beats carry no record: the Kaggle CSVs hold single beats. Build the data with 'ecgnet "
                              "prepare mitdb' (its *_index.csv holds each beat's record), or use model 'kachuee_rr' or 'kachuee'")


def concatenate(parts: list[BeatDataset]) -> BeatDataset:
    """One dataset of ``parts`` in order; rhythm, records and irregularity are kept only if every part has them."""
    rhythm = torch.cat([p.rhythm for p in parts]) if all(p.rhythm is not None for p in parts) else None
    records, irregular = (np.concatenate([getattr(p, k) for p in parts]) if all(getattr(p, k) is not None for p in parts) else None
                          for k in ("records", "irregular"))
    return BeatDataset(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]), parts[0].class_names, rhythm, records,
                       irregular)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of row indices -> (kept, held_out), each sorted."""
    idx = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None  # sklearn needs 2 per class
    from sklearn.model_selection import train_test_split

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


def read_index(path: Path, n_beats: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Records (n,) and rhythm features (n, 4) or None from a ``<stem>_index.csv`` side file."""
    verify_listed(path)
    import pandas as pd  # only when an index is read

    try:
        index = pd.read_csv(path, dtype={"record": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise EcgnetError(f"{path}: unreadable index side file ({e.__class__.__name__}); prepare the data again or remove it") from None
    if "record" not in index.columns:
        raise EcgnetError(f"{path}: index side file has no 'record' column; prepare the data again or remove it")
    if len(index) != n_beats:
        raise EcgnetError(f"{path}: {len(index)} rows for {n_beats} beats; the side file does not belong to this beat file, prepare it again")
    rhythm = None
    if set(RHYTHM_FEATURES) <= set(index.columns):
        values = index[list(RHYTHM_FEATURES)].apply(pd.to_numeric, errors="coerce").to_numpy()
        rhythm = check_rhythm(values, n_beats, str(path))
    return index["record"].astype(str).to_numpy(), rhythm


def index_path(beat_file: Path) -> Path:
    """``<stem>_index.csv`` beside a beat CSV of any suffix."""
    name = beat_file.name
    stem = next(name[: -len(s)] for s in BEAT_CSV_SUFFIXES if name.endswith(s))
    return beat_file.with_name(f"{stem}_index.csv")


def load_files(data_dir: Path, stems: tuple[str, ...], task: Task) -> BeatDataset:
    """The beats of ``stems`` in ``data_dir``, concatenated in that order, with their side files' records and rhythm."""
    parts = []
    for stem in stems:
        path = find_file(data_dir, stem)
        if path is None:
            raise EcgnetError(f"{data_dir}/{stem}.csv not found (also looked for .csv.gz, .csv.xz); pass the folder holding it with --data-dir")
        beats, labels = read_beats(path, n_classes=task.n_classes)
        records = features = irregular = None
        if index_path(path).exists():
            records, features = read_index(index_path(path), len(labels))
        if features is not None:
            irregular = irregular_in_records(features[:, RHYTHM_FEATURES.index("pre_rr")], records)
        parts.append(BeatDataset(beats, labels, task.class_names, None if features is None else rhythm_inputs(features), records,
                                 irregular))
    return concatenate(parts)


@dataclass
class Splits:
    """Train / validation / test beats of one task, and where they came from.

    ``train`` is resident, or a ``store.BeatStore`` read shard by shard during training.
    """
    train: BeatDataset  # or a store.BeatStore: len(), class_counts() and has_rhythm alike
    val: BeatDataset
    test: BeatDataset | None
    data_dir: Path
    test_indices: np.ndarray | None = None  # row indices into the concatenated files, for split-from-train tasks
    recipe: dict = field(default_factory=lambda: dict(PAPER_RECIPE))  # how the beats were cut
    split: dict | None = None  # how a store's beats were split (seed, fractions), when they come from one


def group_split(groups: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
                required: tuple[int, ...], tries: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of row indices by whole groups (patients) -> (kept, held_out), each sorted.

    About ``fraction`` of the groups are held out, chosen so that both sides hold beats of
    every class in ``required``; no group is on both sides.
    """
    names = np.unique(groups)
    k = max(1, int(round(fraction * len(names))))
    if k >= len(names):
        raise EcgnetError(f"a patient-wise split needs more than {len(names)} patient(s); lower the fraction or use split_by 'beats'")
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        held = np.isin(groups, rng.choice(names, size=k, replace=False))
        if all((labels[held] == c).any() and (labels[~held] == c).any() for c in required):
            return np.flatnonzero(~held), np.flatnonzero(held)
    raise EcgnetError(f"no choice of {k} of {len(names)} patients puts classes {list(required)} on both sides; "
                      "change the fraction or use split_by 'beats'")


def holdout(task: Task, data: BeatDataset, rows: np.ndarray, fraction: float, seed: int, by_patients: bool,
            source: Path) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held_out) subsets of ``rows``: stratified by class, or by whole patients."""
    labels = data.y.numpy()[rows]
    if not by_patients:
        kept, held = stratified_split(labels, fraction, seed)
        return rows[kept], rows[held]
    if data.records is None:
        raise EcgnetError(f"{source}: a patient-wise split needs the record of each beat (<stem>_index.csv, written by "
                          "'ecgnet prepare'); use split_by 'beats' for the Kaggle CSVs")
    kept, held = group_split(patients_of(data.records[rows]), labels, fraction, seed, task.holdout_classes)
    return rows[kept], rows[held]


def load_splits(task: Task, data_dir: Path, val_fraction: float, test_fraction: float, seed: int, with_test: bool = False,
                by_patients: bool = False) -> Splits:
    """Train/val split of the training file(s); the test set only when asked.

    For tasks without a test file (PTB), a test split is held out first, then validation
    is carved from the rest, both seeded. With ``by_patients`` each holdout takes whole
    patients (``group_split``), as figures on unseen patients need.
    """
    full = load_files(data_dir, task.train_stems, task)
    rows, test_idx = np.arange(len(full)), None
    if not task.test_stems:
        rows, test_idx = holdout(task, full, rows, test_fraction, seed, by_patients, data_dir)
    train_rows, val_rows = holdout(task, full, rows, val_fraction, seed, by_patients, data_dir)
    test = load_test_set(task, data_dir, test_idx, full) if with_test else None
    return Splits(full.subset(train_rows), full.subset(val_rows), test, data_dir, test_idx, read_recipe(data_dir, task))


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
