"""Build Kaggle-layout beat CSVs from PhysioNet records with the paper's recipe.

mitdb: first channel, annotation beat positions (or --positions gqrs|xqrs|paper: each
detection labelled by the annotated beat within 150 ms; --unmatched q labels the others,
noise and spurious detections, Q instead of leaving them out), AAMI labels; --split random
= stratified 80/20 (seeded, intra-patient like the Kaggle set), --split interpatient = de
Chazal DS1 (train) / DS2 (test), paced records excluded. --second-lead (interpatient) also
cuts each training record's second channel (V1, V2, V4 or V5) as a recording of its own,
named 'RECORD/LEAD' (the same patient), so that a model learns more than one lead.
ptbdb: lead II by name, R peaks by the paper's rule, 'Reason for admission' decides the
file (Healthy control -> ptbdb_normal, Myocardial infarction -> ptbdb_abnormal).
Each CSV gets a side file NAME_index.csv with the record, sample and label of every row and,
for mitdb, its rhythm features (pre_rr, post_rr, local_rr, record_rr in s; ecgnet.signals.rhythm).
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.pool
from functools import partial
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..checksums import write_sums
from ..constants import MITBIH, PTBDB, SAMPLE_RATE, Task
from ..errors import EcgnetError
from ..signals.preprocess import detect_r_peaks, paper_r_peaks, resample, rescale_positions, segment_beats
from ..signals.records import DS1, DS2, MITDB_RECORDS, diagnosis, patients_of, read_beat_annotations, read_wfdb
from ..signals.rhythm import RHYTHM_FEATURES, rhythm_features
from .beatfiles import write_beats_csv
from .parallel import collect, worker_pool

log = logging.getLogger(__name__)

PTB_CLASSES = {"Healthy control": 0, "Myocardial infarction": 1}


def beats_from_record(base: Path, positions: str = "annotations", before_r_s: float = 0.0, channel: int = 0) -> dict:
    """Segment one lead of a mitdb record as ``predict --record`` reads a recording of that lead alone: beats (n, 187),
    labels (or -1), source samples at the record's rate, and rhythm features (n, 4) from every beat position.
    The first channel (the published data's: MLII, but V5 for 102, 104 and 114) is named by its record,
    another 'RECORD/LEAD'."""
    rec = read_wfdb(base, channel=channel)
    if channel:
        rec.name = f"{rec.name}/{rec.lead}"
    signal = resample(rec.signal, rec.fs)
    labels = None
    if positions == "annotations":
        samples, labels = read_beat_annotations(base)
        r = rescale_positions(samples, rec.fs)
    else:
        samples = detect_r_peaks(rec.signal, rec.fs, positions)
        r = rescale_positions(samples, rec.fs)
    order = np.argsort(r, kind="stable")
    cut = segment_beats(signal, r[order], before_r=int(round(before_r_s * SAMPLE_RATE)))
    idx = order[cut.index]
    rhythm = rhythm_features(np.asarray(samples)[order], rec.fs)[cut.index]
    return {"beats": cut.beats, "labels": labels[idx] if labels is not None else np.full(len(idx), -1),
            "samples": np.asarray(samples)[idx], "rhythm": rhythm, "record": rec.name, "recording": rec}


def write_dataset(out: Path, stem: str, beats: np.ndarray, labels: np.ndarray, records: list[str], samples: np.ndarray,
                  rhythm: np.ndarray | None = None, pool: multiprocessing.pool.Pool | None = None) -> None:
    """``stem``.csv in the Kaggle layout and ``stem``_index.csv: row, record, sample, label [, rhythm features]."""
    out.mkdir(parents=True, exist_ok=True)
    write_beats_csv(out / f"{stem}.csv", beats, labels, fmt="%.18e", pool=pool)
    columns = ["row", "record", "sample", "label"] + (list(RHYTHM_FEATURES) if rhythm is not None else [])
    with atomic_write(out / f"{stem}_index.csv", "w") as f:
        f.write(",".join(columns) + "\n")
        for i, (rec, s, y) in enumerate(zip(records, samples, labels)):
            extra = "".join(f",{v:.6f}" for v in rhythm[i]) if rhythm is not None else ""
            f.write(f"{i + 1},{rec},{s},{y}{extra}\n")
    log.info("wrote %s.csv: %d beats, classes %s", out / stem, len(labels), np.bincount(labels).tolist())


def prepare_mitdb(src: Path, out: Path, split: str, seed: int, positions: str, before_r_s: float = 0.0,
                  pool: multiprocessing.pool.Pool | None = None, unmatched: str = "drop", second_lead: bool = False) -> None:
    names = MITDB_RECORDS if split == "random" else DS1 + DS2
    available = [(n, src / n) for n in names if (src / f"{n}.hea").exists()]
    missing = sorted(set(names) - {n for n, _ in available})
    if missing:
        log.warning("missing records (not in %s): %s", src, ", ".join(missing))
    if not available:
        raise EcgnetError(f"{src}: no mitdb records (NNN.hea) found; pass --src DIR or --download")
    results = {r["record"]: r for r in collect(available, partial(beats_from_record, positions=positions, before_r_s=before_r_s), pool)}
    train_group = DS1
    if second_lead:
        seconds = collect([(n, b) for n, b in available if n in DS1],
                          partial(beats_from_record, positions=positions, before_r_s=before_r_s, channel=1), pool)
        results |= {r["record"]: r for r in seconds}
        train_group = DS1 + [r["record"] for r in seconds]
    if positions != "annotations":
        log.info("note: positions other than annotations carry no labels; each beat takes the label of the annotated beat matched "
                 "within 150 ms; the others are %s", "labelled Q" if unmatched == "q" else "left out")
        for r in results.values():
            attach_nearest_labels(r, src, unmatched_label({"unmatched": unmatched}, MITBIH))

    def stack(recs):
        """Beats, labels, records, samples and rhythm of ``recs``, labelled beats only."""
        parts = [results[n] for n in recs if n in results]
        labels = np.concatenate([p["labels"] for p in parts])
        keep = labels >= 0
        records = np.array([p["record"] for p in parts for _ in range(len(p["labels"]))])
        return tuple(a[keep] for a in (np.concatenate([p["beats"] for p in parts]), labels, records,
                                       np.concatenate([p["samples"] for p in parts]), np.concatenate([p["rhythm"] for p in parts])))

    if split == "random":
        from .datasets import stratified_split  # imports torch: see prepare()

        beats, labels, recs, samples, rhythm = stack(names)
        train, test = stratified_split(labels, 0.2, seed)
        for stem, idx in (("mitbih_train", train), ("mitbih_test", test)):
            write_dataset(out, stem, beats[idx], labels[idx], recs[idx].tolist(), samples[idx], rhythm[idx], pool)
    else:
        for stem, group in (("mitbih_train", train_group), ("mitbih_test", DS2)):
            if not any(n in results for n in group):
                log.warning("no record of %s found in %s; %s.csv not written", "DS1" if group is DS1 else "DS2", src, stem)
                continue
            beats, labels, recs, samples, rhythm = stack(group)
            write_dataset(out, stem, beats, labels, recs.tolist(), samples, rhythm, pool)


def unmatched_label(recipe: dict, task: Task) -> int:
    """The label ``recipe`` gave the detections that match no annotated beat (Q with ``--unmatched q``); -1: left out."""
    return task.class_names.index("Q") if recipe.get("unmatched", "drop") == "q" else -1


def attach_nearest_labels(result: dict, src: Path, unmatched_label: int = -1, tolerance_s: float = 0.15) -> None:
    """Label detected beats with the reference beat matched within ``tolerance_s`` (``unmatched_label`` if none;
    -1: left out)."""
    from wfdb import processing

    ref_samples, ref_labels = read_beat_annotations(src / patients_of([result["record"]])[0])
    window = int(round(tolerance_s * result["recording"].fs))
    match = processing.compare_annotations(ref_samples, result["samples"], window).matching_sample_nums
    labels = np.full(len(result["samples"]), unmatched_label)
    labels[match[match >= 0]] = ref_labels[match >= 0]
    result["labels"] = labels


def ptb_record(base: Path) -> dict:
    """The beats of one PTB record (lead II, the paper's R-peak rule), or why it is left out."""
    rec = read_wfdb(base, "ii")
    reason = diagnosis(rec)
    if reason not in PTB_CLASSES:
        return {"record": f"{base.parent.name}/{base.name}", "skip": reason}
    signal = resample(rec.signal, rec.fs)
    r = paper_r_peaks(signal)
    # The published PTB data leaves out the last, incomplete 10 s window (mitdb keeps it).
    cut = segment_beats(signal, r, complete_windows=True)
    return {"record": f"{base.parent.name}/{base.name}", "beats": cut.beats, "label": PTB_CLASSES[reason],
            "samples": np.rint(cut.positions * rec.fs / SAMPLE_RATE).astype(np.int64)}


def prepare_ptbdb(src: Path, out: Path, pool: multiprocessing.pool.Pool | None = None) -> None:
    headers = sorted(src.glob("patient*/*.hea"))
    if not headers:
        raise EcgnetError(f"{src}: no PTB records (patientNNN/*.hea) found; pass --src DIR or --download")

    results = collect([(h.with_suffix("").name, h.with_suffix("")) for h in headers], ptb_record, pool)
    skipped = [r for r in results if "skip" in r]
    if skipped:
        log.info("%d record(s) with other diagnoses left out: %s", len(skipped),
                 ", ".join(f"{r['record']} ({r['skip'] or 'none'})" for r in skipped))
    for stem, label in (("ptbdb_normal", 0), ("ptbdb_abnormal", 1)):
        parts = [r for r in results if r.get("label") == label]
        if not parts:
            log.warning("no %s records found", stem)
            continue
        beats = np.concatenate([p["beats"] for p in parts])
        write_dataset(out, stem, beats, np.full(len(beats), label), [p["record"] for p in parts for _ in range(len(p["beats"]))],
                      np.concatenate([p["samples"] for p in parts]), pool=pool)


DATABASES = ("mitdb", "ptbdb", "ptbxl")
SPLITS = ("random", "interpatient")
UNMATCHED = ("drop", "q")  # detections that match no annotated beat: left out, or labelled Q (unclassifiable)


def prepare(database: str, src: str | Path, out: str | Path = "data", split: str = "random", seed: int = 0,
            positions: str = "annotations", before_r_s: float = 0.0, workers: int = 1, unmatched: str = "drop",
            leads: str = "all", second_lead: bool = False) -> None:
    """Write the Kaggle-layout CSVs (and their _index.csv side files) of ``database`` from the WFDB records in ``src``.

    ``before_r_s`` > 0 (mitdb) widens each beat to start that many seconds before its R
    peak (not the paper's cut); ``<task>_recipe.json`` records how the beats were cut.
    With detected ``positions``, ``unmatched="q"`` keeps the detections no annotated beat
    matches, labelled Q, so that a model learns what a detector's false beats look like.
    Records are read in a pool of ``workers`` processes; the files written do not depend on it.
    """
    # ecgnet.data.datasets imports torch; imported here so that the CLI's parser (which reads this
    # module's choices and docstring) stays importable on the torch-free ONNX Runtime path.
    from .datasets import recipe_path

    src, out = Path(src), Path(out)
    if database == "ptbxl":
        from .ptbxl import prepare_ptbxl

        if before_r_s or positions != "annotations" or unmatched != "drop":
            raise EcgnetError("--before-r, --positions and --unmatched are for mitdb; ptbxl cuts the paper's beats at the "
                              "R peaks the default detector finds on lead II")
        with worker_pool(workers) as pool:
            prepare_ptbxl(src, out, leads, pool)
        return
    if not 0 <= before_r_s <= 1:
        raise EcgnetError(f"--before-r {before_r_s}: give seconds in [0, 1] (e.g. 0.25 to include the P wave)")
    if unmatched not in UNMATCHED:
        raise EcgnetError(f"--unmatched {unmatched!r}: choose one of {', '.join(UNMATCHED)}")
    if second_lead and (database != "mitdb" or split != "interpatient"):
        raise EcgnetError("--second-lead adds the training records' second channel: it needs mitdb with --split interpatient")
    if unmatched != "drop" and (database != "mitdb" or positions == "annotations"):
        raise EcgnetError(f"--unmatched {unmatched} labels detections that match no annotated beat: it needs mitdb with detected "
                          "positions (--positions gqrs, xqrs or paper)")
    with worker_pool(workers) as pool:
        task = _prepare_database(database, src, out, split, seed, positions, before_r_s, unmatched, pool, second_lead)
    stems = task.train_stems + task.test_stems
    write_sums(out, [f"{stem}{suffix}" for stem in stems for suffix in (".csv", "_index.csv")] + [recipe_path(out, task).name])


def _prepare_database(database: str, src: Path, out: Path, split: str, seed: int, positions: str, before_r_s: float,
                      unmatched: str, pool: multiprocessing.pool.Pool | None, second_lead: bool = False):
    from .datasets import write_recipe  # imports torch: see prepare()

    if database == "mitdb":
        prepare_mitdb(src, out, split, seed, positions, before_r_s, pool, unmatched, second_lead)
        write_recipe(out, MITBIH, {"database": database, "split": split, "seed": seed, "positions": positions, "before_r_s": before_r_s}
                     | ({"unmatched": unmatched} if unmatched != "drop" else {}) | ({"second_lead": True} if second_lead else {}))
        task = MITBIH
    elif database == "ptbdb":
        if before_r_s:
            raise EcgnetError("--before-r is for mitdb; ptbdb keeps the paper's cut, as the published PTB data")
        prepare_ptbdb(src, out, pool)
        write_recipe(out, PTBDB, {"database": database})
        task = PTBDB
    else:
        raise EcgnetError(f"unknown database {database!r}; choose one of {', '.join(DATABASES)}")
    return task
