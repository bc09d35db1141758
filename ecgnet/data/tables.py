"""Headerless numeric CSV tables (.csv, .csv.gz, .csv.xz), the form of every beat file: parsed, checked, and the
first problem of a bad one described in one line."""
from __future__ import annotations

import csv
import gzip
import io
import lzma
import math
import zlib
from pathlib import Path

import numpy as np

from ..constants import BEAT_FILE_SUFFIXES, BEAT_LENGTH
from ..errors import EcgnetError

_CORRUPT = (EOFError, lzma.LZMAError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError)
SMALL_TABLE_BYTES = 1 << 20  # a plain CSV up to this size is parsed without pandas (``_read_small_table``)


def open_text(path: Path) -> io.TextIOBase:
    """Open a .csv, .csv.gz or .csv.xz file as text."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rt", newline="")
    if name.endswith(".xz"):
        return lzma.open(path, "rt", newline="")
    return open(path, "rt", newline="")


def check_path(path: Path) -> None:
    if not path.exists():
        raise EcgnetError(f"{path}: file not found")
    if path.is_dir():
        raise EcgnetError(f"{path}: is a directory, expected a beat file ({', '.join(BEAT_FILE_SUFFIXES)})")


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


def _read_small_table(path: Path, columns: tuple[int, ...]) -> np.ndarray | None:
    """A small, well-formed CSV parsed with the csv module (pandas' import costs more than such a file's parse);
    None when the file is large, compressed or not plainly rows of ``columns`` finite numbers: pandas then reads it
    and reports what is wrong. Tests check that both give the same table."""
    if path.suffix.lower() != ".csv" or path.stat().st_size > SMALL_TABLE_BYTES:
        return None
    try:
        with open(path, newline="") as f:
            rows = [[float(v) for v in row] for row in csv.reader(f)]
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) not in columns:
        return None
    table = np.asarray(rows, dtype=np.float64)
    return table if np.isfinite(table).all() else None


def read_table(path: Path, columns: tuple[int, ...]) -> np.ndarray:
    """Parse a headerless numeric CSV whose rows all have one of ``columns`` values; finite values only."""
    check_path(path)
    small = _read_small_table(path, columns)
    if small is not None:
        return small
    import pandas as pd  # imported here: labelling a few beats need not pay for it

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
