"""Beat files: reading, validating, caching and writing rows of 187 samples (optionally + label).

The Kaggle layout: no header, 187 samples (125 Hz, scaled to [0, 1], zero-padded) and
the class label as the 188th value. CSVs may be .csv, .csv.gz or .csv.xz; prediction
also reads .npy and Kaggle-style .mat files.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import logging
import lzma
import multiprocessing
import os
import zlib
from functools import partial
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..checksums import verify_listed
from ..constants import BEAT_CSV_SUFFIXES, BEAT_FILE_SUFFIXES, BEAT_LENGTH, SAMPLE_RATE
from ..errors import EcgnetError
from .tables import check_path, read_table

log = logging.getLogger(__name__)

N_COLUMNS = BEAT_LENGTH + 1
CACHE_VERSION = 1


def check_labels(labels: np.ndarray, source: str, n_classes: int | None = None, what: str = "label") -> np.ndarray:
    """Labels as int64 after checking they are integer classes (in 0..n_classes-1 when given)."""
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0))
    if len(bad):
        i = bad[0]
        raise EcgnetError(f"{source}, row {i + 1}: {what} {labels[i]:g} is not an integer class label; "
                          f"give {BEAT_LENGTH} samples per beat, or {N_COLUMNS} with an integer label last")
    labels = labels.astype(np.int64)
    if n_classes is not None:
        bad = np.flatnonzero(labels >= n_classes)
        if len(bad):
            i = bad[0]
            raise EcgnetError(f"{source}, row {i + 1}: label {labels[i]} is outside this task's classes 0..{n_classes - 1}; "
                              "is this the right file for the task?")
    return labels


def split_columns(array: np.ndarray, source: str, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, 187) or (n, 188 with the label last) -> beats float32 (n, 187), labels int64 or None."""
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0:
        raise EcgnetError(f"{source}: expected beats as rows of {BEAT_LENGTH} samples (optionally + label), got an array of shape {array.shape}")
    if array.shape[1] not in (BEAT_LENGTH, N_COLUMNS):
        raise EcgnetError(f"{source}: beats have {array.shape[1]} values, expected {BEAT_LENGTH} samples at {SAMPLE_RATE} Hz "
                          f"(or {N_COLUMNS} with the label last); cut and pad beats as in the Kaggle layout")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise EcgnetError(f"{source}: values are not real numbers ({array.dtype})")
    with np.errstate(over="ignore", invalid="ignore"):
        beats = np.ascontiguousarray(array[:, :BEAT_LENGTH], dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1) | ~np.isfinite(beats).all(axis=1))
    if len(bad):
        raise EcgnetError(f"{source}, beat {bad[0] + 1}: contains NaN, inf or a value beyond float32 range; repair or drop that beat")
    labels = None
    if array.shape[1] == N_COLUMNS:
        labels = check_labels(array[:, -1], source, n_classes, what="last column")
    return beats, labels


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
    """Read a labelled Kaggle-layout beat CSV, validated, via the parse cache.

    Returns beats as float32 (n, 187) and labels as int64 (n,). The cache is keyed by
    the file's absolute path, size and mtime, so an edited file is parsed again.
    With ``n_classes``, labels outside 0..n_classes-1 are an error.
    """
    path = Path(path)
    check_path(path)
    cached = _cache_path(path) if use_cache else None
    beats = labels = None
    if cached is not None and cached.exists():
        try:
            with np.load(cached) as z:
                beats, labels = z["beats"], z["labels"]
        except (OSError, ValueError, KeyError, zlib.error, EOFError):
            beats = labels = None  # a damaged cache entry is rebuilt from the source
    if beats is None:
        verify_listed(path)  # parsed from the file: check it against SHA256SUMS (a cache hit was checked when cached)
        table = read_table(path, (N_COLUMNS,))
        labels = check_labels(table[:, -1], str(path))
        beats = np.ascontiguousarray(table[:, :-1], dtype=np.float32)
        if cached is not None:
            _write_cache(cached, beats, labels)
    check_labels(labels, str(path), n_classes)
    return beats, labels


def _write_cache(target: Path, beats: np.ndarray, labels: np.ndarray) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as f:
            np.savez(f, beats=beats, labels=labels)
    except OSError as e:  # a read-only home must not stop training; it only costs speed
        log.warning("cannot write parse cache in %s (%s); set ECGNET_CACHE_DIR to a writable folder", target.parent, e.strerror)


def _loadmat(path: str) -> dict:
    import scipy.io
    return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}


def _loadmat_isolated(path: Path) -> dict:
    """The arrays of a .mat file, parsed in a forked child: scipy's parser crashes the whole
    process (segmentation fault) on some damaged files (found by tests/test_fuzz.py)."""
    importlib.import_module("scipy.io")  # imported once here, not in every child

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform: parse in-process
        return _loadmat(str(path))
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_loadmat_into, args=(str(path), send), daemon=True)
    child.start()
    send.close()
    try:
        ok, value = receive.recv()
    except EOFError:  # the child died without answering
        child.join()
        raise EcgnetError(f"{path}: the .mat parser crashed on this file (signal {-child.exitcode}), so it is damaged; "
                          "save it again with scipy.io.savemat or MATLAB -v7") from None
    child.join()
    if not ok:
        raise value
    return value


def _loadmat_into(path: str, send) -> None:
    import faulthandler
    faulthandler.disable()  # in this child a crash is expected and reported by the parent, not dumped
    try:
        send.send((True, _loadmat(path)))
    except Exception as e:  # noqa: BLE001 - handed to the parent, which reports it
        send.send((False, e))


def _load_array(path: Path) -> np.ndarray:
    """The one array of a .npy file or a Kaggle-style .mat file ('data', or its only array)."""
    name = path.name.lower()
    if name.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - numpy's header parser raises ValueError, SyntaxError, TokenError, ... on damage
            raise EcgnetError(f"{path}: not a readable .npy array ({e.__class__.__name__}); save it with numpy.save") from None
    try:
        arrays = _loadmat_isolated(path)
    except EcgnetError:
        raise
    except Exception as e:  # scipy's MAT parser raises many types (IndexError, ValueError, ...) on damaged files
        raise EcgnetError(f"{path}: not a readable .mat file ({e.__class__.__name__}: {e}); save it with scipy.io.savemat or MATLAB -v7") from None
    if "data" in arrays:
        return arrays["data"]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise EcgnetError(f"{path}: .mat holds {sorted(arrays)}; expected one array, or one named 'data'")


def read_beats_file(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Beats from any beat file (.csv/.csv.gz/.csv.xz, .npy, .mat): rows of 187 samples, optional label last.

    Returns beats float32 (n, 187) and labels int64 (n,) or None.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(BEAT_CSV_SUFFIXES):
        return split_columns(read_table(path, (BEAT_LENGTH, N_COLUMNS)), str(path))
    if not name.endswith(BEAT_FILE_SUFFIXES):
        raise EcgnetError(f"{path}: unsupported file type; use {', '.join(BEAT_FILE_SUFFIXES)}")
    check_path(path)
    return split_columns(np.asarray(_load_array(path)), str(path))


def _format_rows(table: np.ndarray, fmt: str) -> str:
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt=fmt, delimiter=",")
    return buffer.getvalue()


def write_beats_csv(path: str | Path, beats: np.ndarray, labels: np.ndarray | None = None, fmt: str = "%.9g",
                    pool=None) -> None:
    """Write beats (and labels as column 188) in the Kaggle layout; compression by suffix.

    The default '%.9g' round-trips float32 exactly; the Kaggle files use '%.18e'. With a
    ``multiprocessing`` ``pool`` the rows are formatted in chunks across its processes
    (formatting dominates the time), joined in order: the same bytes as without.
    """
    table = beats if labels is None else np.column_stack([beats, labels])
    if pool is not None and len(table) > 1000:
        text = "".join(pool.map(partial(_format_rows, fmt=fmt), np.array_split(table, 16)))
    else:
        text = _format_rows(table, fmt)
    path = Path(path)
    compress = {".gz": gzip.compress, ".xz": lzma.compress}.get(path.suffix, bytes)
    with atomic_write(path) as f:  # a killed writer never leaves a half file under this name
        f.write(compress(text.encode()))
