"""PTB-XL (Wagner et al. 2020) for record-level myocardial infarction: ``ecgnet prepare ptbxl`` and its reader.

A record is MI when one of its SCP statements of diagnostic class MI has likelihood > 0, and NORM when NORM
is the only diagnostic class among its statements of likelihood > 0; the others are left out (counted). Each record's beats are cut by the paper's
recipe at R peaks found on lead II, from lead II alone or from all 12 leads (``ecgnet.signals.leads``).
PTB-XL's ``strat_fold`` is patient-wise: folds 1-7 train, 8 validates, 9 tests (10, the official test fold,
is not part of the shared subset). Written: ``ptbxl_beats.npy`` (rows, 187) float32, ``ptbxl_index.csv``
(row, ecg_id, patient_id, strat_fold, lead, beat, sample, label, location) and ``ptbxl_recipe.json``.
"""
from __future__ import annotations

import ast
import csv
import json
import logging
import multiprocessing.pool
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..atomic import atomic_write, write_text
from ..checksums import write_sums
from ..constants import MI_CLASSES, RHYTHM_LEAD, STANDARD_LEADS
from ..errors import EcgnetError
from ..signals.leads import lead_beats, read_leads
from .parallel import collect

log = logging.getLogger(__name__)

FOLDS = {"train": (1, 2, 3, 4, 5, 6, 7), "val": (8,), "test": (9,)}
LEAD_CHOICES = {"ii": (RHYTHM_LEAD,), "all": STANDARD_LEADS}
BEATS_FILE, INDEX_FILE, RECIPE_FILE = "ptbxl_beats.npy", "ptbxl_index.csv", "ptbxl_recipe.json"
# MI locations of the SCP statements, for sensitivity per location.
LOCATIONS = {"inferior": ("IMI", "ILMI", "IPMI", "IPLMI", "INJIN", "INJIL"),
             "anterior": ("ASMI", "AMI", "ALMI", "INJAS", "INJAL", "INJLA"), "lateral": ("LMI",), "posterior": ("PMI",)}


@dataclass
class Statement:
    ecg_id: int
    patient_id: int
    fold: int
    path: str
    label: int          # MI_CLASSES index, or -1: left out
    location: str       # MI location ('' for NORM)


def diagnostic_classes(src: Path) -> dict[str, str]:
    """SCP code -> its diagnostic class (NORM, MI, STTC, CD, HYP), from scp_statements.csv."""
    path = src / "scp_statements.csv"
    try:
        with open(path, newline="") as f:
            return {row[""]: row["diagnostic_class"] for row in csv.DictReader(f) if row.get("diagnostic_class")}
    except (OSError, KeyError) as e:
        raise EcgnetError(f"{path}: missing or not PTB-XL's scp_statements.csv ({e}); pass --src the PTB-XL folder") from None


def label_of(codes: dict[str, float], classes: dict[str, str]) -> tuple[int, str]:
    """(MI_CLASSES index or -1, MI location) of one record's scp_codes."""
    mi = [c for c, p in codes.items() if classes.get(c) == "MI" and p > 0]
    if mi:
        where = [name for name, group in LOCATIONS.items() if any(c in group for c in mi)]
        return MI_CLASSES.index("MI"), "+".join(where) or "other"
    diagnostic = {classes[c] for c, p in codes.items() if c in classes and p > 0}  # statements of likelihood 0 are not asserted
    return (MI_CLASSES.index("NORM"), "") if diagnostic == {"NORM"} else (-1, "")


def read_statements(src: Path) -> list[Statement]:
    """Every record of ptbxl_database.csv with its MI / NORM label."""
    classes = diagnostic_classes(src)
    path = src / "ptbxl_database.csv"
    rows = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                label, where = label_of(ast.literal_eval(row["scp_codes"]), classes)
                rows.append(Statement(int(row["ecg_id"]), int(float(row["patient_id"])), int(row["strat_fold"]),
                                      row["filename_lr"], label, where))
    except (OSError, KeyError, ValueError, SyntaxError) as e:
        raise EcgnetError(f"{path}: missing or not PTB-XL's database file ({e.__class__.__name__}: {e}); pass --src the PTB-XL folder") from None
    return rows


def record_beats(base: Path, leads: tuple[str, ...]) -> dict:
    """The beats of one record's ``leads`` at shared R peaks (``ecgnet.signals.leads``)."""
    cut = lead_beats(read_leads(base), leads=leads)
    return {"base": str(base), "beats": cut.beats, "present": cut.present, "samples": cut.samples}


def prepare_ptbxl(src: Path, out: Path, leads: str = "all", pool: multiprocessing.pool.Pool | None = None) -> dict:
    """Write the beats, index and recipe of PTB-XL's MI and NORM records; returns the counts."""
    if leads not in LEAD_CHOICES:
        raise EcgnetError(f"--leads {leads!r}: choose one of {', '.join(LEAD_CHOICES)}")
    statements = read_statements(src)
    labelled = [s for s in statements if s.label >= 0]
    kept = [s for s in labelled if (src / f"{s.path}.hea").exists()]
    if not kept:
        raise EcgnetError(f"{src}: no MI or NORM record with its WFDB files (records100/...) found; pass --src the PTB-XL folder")
    of_base = {str(src / s.path): s for s in kept}
    results = collect([(s.path, src / s.path) for s in kept], partial(record_beats, leads=LEAD_CHOICES[leads]), pool)
    beats, rows = [], []
    for r in results:
        s = of_base[r["base"]]
        for k in range(len(r["beats"])):
            for slot in np.flatnonzero(r["present"]):
                rows.append((s.ecg_id, s.patient_id, s.fold, STANDARD_LEADS[slot], k, int(r["samples"][k]), s.label, s.location))
                beats.append(r["beats"][k, slot])
    labels = [of_base[r["base"]].label for r in results]
    counts = {"records": len(statements), "left_out_other_diagnoses": len(statements) - len(labelled),
              "missing_files": len(labelled) - len(kept), "unreadable": len(kept) - len(results), "kept": len(results),
              **{name: labels.count(k) for k, name in enumerate(MI_CLASSES)}, "rows": len(rows)}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / BEATS_FILE, "wb") as f:
        np.save(f, np.asarray(beats, np.float32))
    with atomic_write(out / INDEX_FILE, "w") as f:
        f.write("row,ecg_id,patient_id,strat_fold,lead,beat,sample,label,location\n")
        f.writelines(f"{i},{','.join(map(str, row))}\n" for i, row in enumerate(rows))
    write_text(out / RECIPE_FILE, json.dumps({"database": "ptbxl", "leads": leads, "before_r_s": 0.0, "folds": FOLDS, "counts": counts},
                                             indent=2) + "\n")
    write_sums(out, [BEATS_FILE, INDEX_FILE, RECIPE_FILE])
    log.info("ptbxl: %s", counts)
    return counts


@dataclass
class RecordSet:
    """Recordings as padded tensors for a record-level model, with their labels and PTB-XL metadata."""
    beats: np.ndarray      # (R, K, 12, 187) float32
    beat_mask: np.ndarray  # (R, K) bool: real beats
    present: np.ndarray    # (R, 12) bool: leads present
    labels: np.ndarray     # (R,) MI_CLASSES index
    folds: np.ndarray      # (R,) strat_fold
    patients: np.ndarray   # (R,) patient_id
    ecg_ids: np.ndarray    # (R,)
    locations: list[str]   # MI location per record ('' for NORM)

    def subset(self, keep: np.ndarray) -> "RecordSet":
        """The records where ``keep`` (bool or indices)."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
        return RecordSet(self.beats[idx], self.beat_mask[idx], self.present[idx], self.labels[idx], self.folds[idx],
                         self.patients[idx], self.ecg_ids[idx], [self.locations[i] for i in idx])

    def split(self, name: str) -> "RecordSet":
        """The records of PTB-XL's folds for ``name`` (train, val or test)."""
        return self.subset(np.isin(self.folds, FOLDS[name]))


def load_ptbxl(data_dir: str | Path) -> RecordSet:
    """The records ``ecgnet prepare ptbxl`` wrote to ``data_dir``."""
    data_dir = Path(data_dir)
    if not (data_dir / INDEX_FILE).exists() or not (data_dir / BEATS_FILE).exists():
        raise EcgnetError(f"{data_dir}: no {INDEX_FILE} / {BEATS_FILE}; run 'ecgnet prepare ptbxl --src PTBXL_DIR --out {data_dir}' first")
    rows = np.load(data_dir / BEATS_FILE, mmap_mode="r")
    with open(data_dir / INDEX_FILE, newline="") as f:
        index = list(csv.DictReader(f))
    records = sorted({int(r["ecg_id"]) for r in index})
    place = {ecg_id: i for i, ecg_id in enumerate(records)}
    n_beats = max(int(r["beat"]) for r in index) + 1
    out = RecordSet(np.zeros((len(records), n_beats, len(STANDARD_LEADS), rows.shape[1]), np.float32),
                    np.zeros((len(records), n_beats), bool), np.zeros((len(records), len(STANDARD_LEADS)), bool),
                    np.zeros(len(records), np.int64), np.zeros(len(records), np.int64), np.zeros(len(records), np.int64),
                    np.asarray(records, np.int64), [""] * len(records))
    for row in index:
        i, k, slot = place[int(row["ecg_id"])], int(row["beat"]), STANDARD_LEADS.index(row["lead"])
        out.beats[i, k, slot] = rows[int(row["row"])]
        out.beat_mask[i, k] = out.present[i, slot] = True
        out.labels[i], out.folds[i], out.patients[i] = int(row["label"]), int(row["strat_fold"]), int(row["patient_id"])
        out.locations[i] = row["location"]
    return out
