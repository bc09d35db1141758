"""Labelling many recordings: find them, label each in a process pool, one summary over all.

Torch-free at import, like ``ecgnet.serving.labelling``: the classifier is built inside each worker
(``load_classifier``), so the ONNX Runtime backend never imports torch here either.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text
from ..cards import shipped_names, shipped_onnx
from ..constants import EDF_SUFFIXES, ONNX_SUFFIX, SIGNAL_FILE_SUFFIXES
from ..errors import EcgnetError

RECORD_SUFFIXES = (".hea",) + EDF_SUFFIXES + SIGNAL_FILE_SUFFIXES


def onnxruntime_installed() -> bool:
    """Whether ONNX Runtime imports here (a model about to run on it pays this import anyway)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(spec: str, backend: str = "auto") -> tuple[str, str]:
    """(backend, model path or name) that labels with ``spec``: ONNX Runtime for .onnx files, and by default (``auto``)
    for a shipped model that ships its ONNX graph when onnxruntime is installed (no torch import); PyTorch otherwise."""
    onnx_file = Path(spec).suffix == ONNX_SUFFIX
    if backend == "onnxruntime" and not onnx_file:
        shipped = shipped_onnx(spec) if spec in shipped_names() else None
        if shipped is None:
            raise EcgnetError(f"--backend onnxruntime runs .onnx files and the shipped models, not {spec}; export one with "
                              f"'ecgnet export --checkpoint {spec} --onnx model.onnx'")
        return backend, str(shipped)
    if backend == "auto" and not onnx_file and spec in shipped_names() and onnxruntime_installed():
        shipped = shipped_onnx(spec)
        if shipped is not None:
            return "onnxruntime", str(shipped)
    return ("onnxruntime" if onnx_file and backend != "torch" else "torch"), spec


def load_classifier(spec: str, backend: str = "auto", device: str = "cpu", threads: int = 0):
    """A ``Predictor`` (PyTorch) or an ``OnnxPredictor`` (``choose_backend``; torch is then never imported)."""
    backend, path = choose_backend(spec, backend)
    if backend == "onnxruntime":
        from .onnx_backend import OnnxPredictor
        return OnnxPredictor(path, threads, name=spec)
    if Path(spec).suffix == ONNX_SUFFIX:
        raise EcgnetError(f"{spec} is an ONNX model: run it with --backend onnxruntime (or auto), not torch")
    from ..models.pretrained import resolve_checkpoint
    from ..models.registry import is_record_model
    from .inference import Predictor

    ckpt = resolve_checkpoint(spec)
    if is_record_model(ckpt.get("model_name", "")):
        from .diagnosis import RecordPredictor
        return RecordPredictor(ckpt, spec)
    return Predictor(ckpt, device, source=spec)


def find_records(paths: list[str]) -> list[Path]:
    """Every recording named by ``paths``: files, WFDB record names, folders (searched recursively) or globs.

    Inside folders and globs a recording is a WFDB header (.hea), an EDF/BDF file, or a
    .csv/.npy signal. Returned in the order given (folders sorted), without duplicates;
    WFDB records as their base name (path without .hea).
    """
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if any(ch in text for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            found += [m for m in matches if m.is_file() and m.suffix.lower() in RECORD_SUFFIXES]
            if not matches:
                raise EcgnetError(f"{text}: no file matches this pattern")
        elif path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in RECORD_SUFFIXES)
            if not inside:
                raise EcgnetError(f"{path}: no recordings in this folder (looked for {', '.join(RECORD_SUFFIXES)})")
            found += inside
        else:
            found.append(path)
    return list(dict.fromkeys(p.with_suffix("") if p.suffix == ".hea" else p for p in found))


def output_names(records: list[Path]) -> list[str]:
    """A distinct folder name per record: its stem, with parent folders added where stems repeat."""
    names = [r.stem if r.suffix else r.name for r in records]
    if len(set(names)) == len(names):
        return names
    common = Path(os.path.commonpath([str(r.parent.resolve()) for r in records]))
    return ["_".join(r.resolve().relative_to(common).with_suffix("").parts) for r in records]


@dataclass
class LabelJob:
    """What every worker needs besides the record: model, detector and output settings."""
    model: str
    backend: str
    detector: str
    lead: str | None
    fs: float | None
    min_confidence: float | None
    strip_start: float
    strip_seconds: float


_worker_classifier = None
_worker_error = ""  # why this worker has no classifier: each of its records fails with it


def _init_worker(job: LabelJob, threads: int) -> None:
    """Each worker process: its thread count, then its own copy of the classifier. A classifier that does not load
    is reported per record: an initializer that raised would make the pool start new workers without end."""
    global _worker_classifier, _worker_error
    if choose_backend(job.model, job.backend)[0] == "torch":
        from ..runtime import configure_process
        configure_process(threads, "cpu", deterministic=False)
    try:
        _worker_classifier = load_classifier(job.model, job.backend, "cpu", threads)
    except Exception as e:  # noqa: BLE001 - any reason; it is reported with each record
        _worker_error = str(e) if isinstance(e, EcgnetError) else f"{e.__class__.__name__}: {str(e)[:200]}"
    import numpy  # noqa: F401 - its BLAS loaded, so that the limit below reaches it
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)  # NumPy's BLAS too: by default each worker's pool would take every core


def label_to_folder(classifier, recording, out: Path, job: LabelJob) -> dict:
    """Label one ``Recording`` into ``out`` (beats.csv, summary.json, strip.png); returns its summary."""
    from .labelling import label_record, plot_strip, write_beat_table

    result = label_record(classifier, recording, job.detector, job.min_confidence)
    out.mkdir(parents=True, exist_ok=True)
    write_beat_table(result, out / "beats.csv")
    plot_strip(result, recording, out / "strip.png", job.strip_start, job.strip_seconds)
    write_text(out / "summary.json", json.dumps(result["summary"], indent=2) + "\n")
    return result["summary"]


def label_path(classifier, record: Path, out: Path, job: LabelJob) -> dict:
    """Label the recording at ``record`` into ``out``: each beat, or with a record-level model the whole recording."""
    if getattr(classifier, "record_level", False):
        from .diagnosis import judge_to_folder
        return judge_to_folder(classifier, record, out, job.detector)
    from ..signals.records import read_recording
    return label_to_folder(classifier, read_recording(record, job.lead, job.fs), out, job)


def _label_one(task: tuple[Path, Path, LabelJob]) -> dict:
    record, out, job = task
    if _worker_classifier is None:
        return {"path": str(record), "status": "failed", "error": f"the model could not be loaded: {_worker_error}", "model_failed": True}
    try:
        return {"path": str(record), "status": "ok", "summary": label_path(_worker_classifier, record, out, job)}
    except EcgnetError as e:
        return {"path": str(record), "status": "failed", "error": str(e)}
    except Exception as e:  # noqa: BLE001 - one broken record must not stop the others; its reason is reported
        return {"path": str(record), "status": "failed", "error": f"{e.__class__.__name__}: {str(e)[:200]}"}


def label_many(records: list[Path], out_dir: Path, job: LabelJob, workers: int = 0) -> list[dict]:
    """Label ``records`` in a pool of ``workers`` processes (0: one per core) into ``out_dir/<name>/``.

    Returns one row per record, in the order given, with its summary or its error;
    writes ``out_dir/summary.csv`` over all of them. A failing record never stops the rest; a model that does not load
    (in the workers: the caller need not load it first) is one ``EcgnetError``.
    """
    from tqdm import tqdm

    workers = min(workers or os.cpu_count() or 1, len(records))
    threads = max(1, (os.cpu_count() or 1) // workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(r, out_dir / name, job) for r, name in zip(records, output_names(records))]
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker: no forked thread pools
    with context.Pool(workers, initializer=_init_worker, initargs=(job, threads)) as pool:
        progress = tqdm(pool.imap(_label_one, tasks), total=len(tasks), desc="records", unit="record", file=sys.stderr, disable=None)
        rows = [row | {"folder": task[1].name} for task, row in zip(tasks, progress)]
    # every record fails at once without a model; raised only now, as stopping a pool mid-run can hang its threads
    model_errors = [r["error"] for r in rows if r.get("model_failed")]
    if model_errors:
        raise EcgnetError(model_errors[0])
    write_text(out_dir / "summary.csv", summary_csv(rows))
    return rows


VERDICT_COLUMNS = ("record_class", "threshold", "leads", "beats_read", "seconds")  # and p_<class>: a record-level model's summary.csv


def verdict_csv(rows: list[dict]) -> str:
    """One line per recording judged by a record-level model: its verdict, probability, threshold, leads and beats, status."""
    p_key = next((k for r in rows if r["status"] == "ok" for k in r["summary"] if k.startswith("p_")), "p")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record", "path", VERDICT_COLUMNS[0], p_key, *VERDICT_COLUMNS[1:], "status", "error"])
    for r in rows:
        s = r.get("summary") or {}
        values = [s.get(c, "") for c in (VERDICT_COLUMNS[0], p_key, *VERDICT_COLUMNS[1:])]
        writer.writerow([r["folder"], r["path"], *(f"{v:.4f}" if isinstance(v, float) else v for v in values), r["status"], r.get("error", "")])
    return buffer.getvalue()


def summary_csv(rows: list[dict]) -> str:
    """One line per record: minutes, beats, beats per class, ectopic share, share in irregular rhythm, mean heart rate, status
    (``verdict_csv`` for a record-level model's verdicts)."""
    if any(r["status"] == "ok" and "record_class" in r["summary"] for r in rows):
        return verdict_csv(rows)
    classes = next((list(r["summary"]["per_class"]) for r in rows if r["status"] == "ok"), [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record", "path", "minutes", "beats", *classes, "ectopic_share", "irregular_rhythm_share", "mean_heart_rate_bpm",
                     "status", "error"])
    for r in rows:
        s = r.get("summary")
        if s is None:
            writer.writerow([r["folder"], r["path"], "", "", *[""] * len(classes), "", "", "", r["status"], r["error"]])
            continue
        share = s.get("ectopic_share")
        writer.writerow([r["folder"], r["path"], f"{s['seconds'] / 60:.2f}", s["classified"], *(s["per_class"].get(c, 0) for c in classes),
                         "" if share is None else f"{share:.4f}", f"{s['irregular_rhythm_share']:.4f}", f"{s['mean_heart_rate_bpm']:.1f}",
                         r["status"], ""])
    return buffer.getvalue()
