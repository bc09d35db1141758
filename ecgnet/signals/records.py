"""Raw ECG recordings: WFDB records (PhysioNet) and single-signal CSV/NPY files, and their annotations."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..constants import EDF_SUFFIXES, SIGNAL_FILE_SUFFIXES, WFDB_SUFFIXES
from ..errors import EcgnetError
from .wfdb_files import read_header, read_signal

# AAMI EC57 beat classes from MIT-BIH annotation symbols (index = class label).
AAMI_GROUPS = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
AAMI_CLASS = {symbol: k for k, group in enumerate(AAMI_GROUPS.values()) for symbol in group}
PREFERRED_LEADS = ("MLII", "II", "ii")
MIN_FS, MAX_FS = 10.0, 100_000.0  # Hz: a --fs outside is a typo, not an ECG
MAX_RECORD_SAMPLES = 200_000_000  # per lead, read at once: 154 h at 360 Hz, 1.6 GB as float64
# Bytes per sample of the uncompressed WFDB formats (compressed FLAC formats are not size-checked).
WFDB_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}

# de Chazal et al. (2004) inter-patient split; paced records 102, 104, 107, 217 are excluded.
DS1 = ("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230").split()
DS2 = ("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234").split()
MITDB_RECORDS = sorted(DS1 + DS2 + ["102", "104", "107", "217"])


@dataclass
class Recording:
    """One lead of an ECG recording."""
    signal: np.ndarray  # one lead, physical units
    fs: float
    lead: str
    name: str
    comments: list[str] = field(default_factory=list)


def patients_of(records) -> np.ndarray:
    """The patient of each record name: 'patient001/s0010_re' -> 'patient001' (PTB); an MIT-BIH record is its own,
    and so is its second lead, 'RECORD/LEAD' (``prepare --second-lead``)."""
    return np.array([r.split("/", 1)[0] for r in np.asarray(records, dtype=str)])


def _record_base(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in WFDB_SUFFIXES else path


def read_wfdb(path: str | Path, lead: str | None = None, channel: int | None = None) -> Recording:
    """One lead of a WFDB record: ``channel`` by index, or ``lead`` by name, else MLII / II, else the first channel."""
    def pick(names: list[str], base: Path) -> list[int]:
        if channel is None:
            return [pick_lead(names, lead, str(base))]
        if not 0 <= channel < len(names):
            raise EcgnetError(f"{base}: no channel {channel}; the record has {len(names)} ({', '.join(names)})")
        return [channel]

    base = _record_base(path)
    header = base.with_suffix(".hea")
    head = read_header(header) if header.is_file() else None
    if head is not None:  # the common formats, without importing wfdb (ecgnet.signals.wfdb_files)
        chosen = pick(head.sig_name, base)[0]
        check_claimed_size(head, base, header)
        return Recording(read_signal(base, head, chosen), head.fs, head.sig_name[chosen], base.name, head.comments)
    record, base = wfdb_record(path, pick)
    return Recording(record.p_signal[:, 0].astype(np.float64), float(record.fs), str(record.sig_name[0] or ""), base.name,
                     list(record.comments or []))


def wfdb_record(path: str | Path, pick=None):
    """A WFDB record (the ``wfdb`` package's) and its base path, after checking its header and the size it claims:
    every channel, or those ``pick(channel names, base)`` returns."""
    import wfdb

    base = _record_base(path)
    header = base.with_suffix(".hea")
    if not header.exists():
        raise EcgnetError(f"{base}: WFDB header {header.name} not found; pass a WFDB record (NAME or NAME.hea)")
    try:
        head = wfdb.rdheader(str(base))
    except Exception as e:  # wfdb raises many types for a bad header
        raise EcgnetError(f"{header}: unreadable WFDB header ({e})") from None
    channels = pick([str(n or "") for n in head.sig_name or []], base) if pick else None
    check_claimed_size(head, base, header)
    try:
        return wfdb.rdrecord(str(base), channels=channels), base
    except Exception as e:
        raise EcgnetError(f"{base}: cannot read the signal ({e.__class__.__name__}: {e}); unsupported WFDB format?") from None


def check_claimed_size(head, base: Path, header: Path) -> None:
    """Refuse a header whose signal files are missing or hold fewer bytes than it claims (before allocating)."""
    files: dict[str, list[str]] = {}
    for f, fmt in zip(head.file_name or [], head.fmt or []):
        if f:
            files.setdefault(f, []).append(str(fmt))
    sig_len = int(head.sig_len or 0)
    if sig_len > MAX_RECORD_SAMPLES:
        raise EcgnetError(f"{header}: claims {sig_len:,} samples per lead, more than ecgnet reads at once ({MAX_RECORD_SAMPLES:,}); "
                          "split the record into parts (e.g. with wfdb.wrsamp)")
    for f, fmts in files.items():
        path = base.parent / f
        if not path.is_file():
            raise EcgnetError(f"{base}: signal file {f} named in {header.name} is missing")
        need = sig_len * sum(WFDB_BYTES_PER_SAMPLE.get(fmt, 0) for fmt in fmts)
        if need > path.stat().st_size + 1024:
            raise EcgnetError(f"{header}: claims {sig_len:,} samples per lead ({need / 1e6:.1f} MB), but {f} holds "
                              f"{path.stat().st_size / 1e6:.1f} MB; the record is truncated or its header is wrong")


def read_signal_file(path: str | Path, fs: float | None) -> Recording:
    """A single-lead signal from .npy or a one-column .csv (no header); ``fs`` must be given."""
    path = Path(path)
    if fs is None:
        raise EcgnetError(f"{path}: a {path.suffix} signal carries no sampling rate; pass --fs (e.g. --fs 360)")
    if not MIN_FS <= fs <= MAX_FS:  # also refuses NaN
        raise EcgnetError(f"{path}: --fs {fs} is not a sampling rate; give the signal's rate in Hz ({MIN_FS:g} to {MAX_FS:g}), e.g. --fs 360")
    if not path.is_file():
        raise EcgnetError(f"{path}: file not found")
    if path.stat().st_size > MAX_RECORD_SAMPLES * (8 if path.suffix == ".npy" else 32):
        raise EcgnetError(f"{path}: {path.stat().st_size / 1e9:.1f} GB is more than ecgnet reads at once "
                          f"({MAX_RECORD_SAMPLES:,} samples); split the signal into parts")
    try:
        signal = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=1)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - numpy's parsers raise ValueError, SyntaxError, TokenError, ... on damaged files
        raise EcgnetError(f"{path}: not a numeric single-lead signal ({e.__class__.__name__}: {str(e)[:120]})") from None
    if not np.issubdtype(np.asarray(signal).dtype, np.number) or np.iscomplexobj(signal):
        raise EcgnetError(f"{path}: values are not real numbers ({np.asarray(signal).dtype})")
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise EcgnetError(f"{path}: expected one lead (a 1-D array or one column), got shape {signal.shape}")
    return Recording(signal, float(fs), "signal", path.stem)


def _to_millivolts(unit: str) -> float:
    """Factor from an EDF physical dimension to mV (1 when the unit is unknown: values are kept as they are)."""
    return {"uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "mv": 1.0, "v": 1e3}.get(unit.strip().lower(), 1.0)


def pick_lead(names: list[str], lead: str | None, source: str) -> int:
    """Index of ``lead`` (case-insensitive), else of MLII / II, else of the first ECG-like label, else 0."""
    lower = [n.strip().lower() for n in names]
    if lead is not None:
        if lead.strip().lower() not in lower:
            raise EcgnetError(f"{source}: no lead named {lead!r}; the recording has {', '.join(names)}")
        return lower.index(lead.strip().lower())
    for preferred in PREFERRED_LEADS + ("ecg ii", "ecg mlii", "ecg lead ii"):
        if preferred.lower() in lower:
            return lower.index(preferred.lower())
    return next((i for i, n in enumerate(lower) if "ecg" in n or "ekg" in n), 0)


def read_edf(path: str | Path, lead: str | None = None) -> Recording:
    """One lead of an EDF / EDF+ / BDF file (``lead`` by label), in mV where the file states its unit."""
    import edfio

    path = Path(path)
    if not path.is_file():
        raise EcgnetError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # edfio's notices of a truncated file: judged below, as an error
            edf = edfio.read_edf(path, lazy_load_data=True)
        signals = list(edf.signals)
        claimed = int(path.open("rb").read(256)[236:244].decode("ascii").strip() or -1)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - edfio raises ValueError, IndexError, UnicodeDecodeError, ... on damaged headers
        raise EcgnetError(f"{path}: not a readable EDF/EDF+ file ({e.__class__.__name__}: {str(e)[:120]})") from None
    if not signals:
        raise EcgnetError(f"{path}: the EDF file holds no signals")
    if claimed > 0 and claimed != edf.num_data_records:
        raise EcgnetError(f"{path}: the header promises {claimed} data records, the file holds {edf.num_data_records}; "
                          "the file is truncated (copy it again, or fix the header's record count)")
    chosen = signals[pick_lead([s.label for s in signals], lead, str(path))]
    if chosen.samples_per_data_record * edf.num_data_records > MAX_RECORD_SAMPLES:
        raise EcgnetError(f"{path}: lead {chosen.label} has more samples than ecgnet reads at once ({MAX_RECORD_SAMPLES:,})")
    try:
        data = np.asarray(chosen.data, dtype=np.float64) * _to_millivolts(chosen.physical_dimension)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - a truncated data section surfaces only when read
        raise EcgnetError(f"{path}: cannot read lead {chosen.label} ({e.__class__.__name__}); the file is truncated or damaged") from None
    return Recording(data, float(chosen.sampling_frequency), chosen.label.strip(), path.stem)


def read_recording(path: str | Path, lead: str | None = None, fs: float | None = None) -> Recording:
    """A WFDB record (path with or without .hea), an EDF/EDF+/BDF file, or a .csv/.npy signal with ``fs``."""
    p = Path(path)
    if p.suffix.lower() in EDF_SUFFIXES:
        return read_edf(p, lead)
    if p.suffix in SIGNAL_FILE_SUFFIXES:
        return read_signal_file(p, fs)
    if not _record_base(p).with_suffix(".hea").exists():
        raise EcgnetError(f"{path}: no WFDB record (NAME.hea) or .csv/.npy signal found here")
    return read_wfdb(p, lead)


def read_beat_annotations(path: str | Path, extension: str = "atr") -> tuple[np.ndarray, np.ndarray]:
    """Reference beat annotations in AAMI classes: (sample positions, class labels); non-beat symbols dropped."""
    import wfdb

    base = _record_base(path)
    try:
        ann = wfdb.rdann(str(base), extension)
    except FileNotFoundError:
        raise EcgnetError(f"{base}: annotation file {base.name}.{extension} not found") from None
    keep = np.array([s in AAMI_CLASS for s in ann.symbol], dtype=bool)
    samples = np.asarray(ann.sample)[keep]
    labels = np.array([AAMI_CLASS[s] for s in np.asarray(ann.symbol)[keep]], dtype=np.int64)
    return samples, labels


def diagnosis(recording: Recording) -> str:
    """PTB header field 'Reason for admission' (empty if absent)."""
    for line in recording.comments:
        key, _, value = line.partition(":")
        if key.strip().lower() == "reason for admission":
            return value.strip()
    return ""


def flutter_episodes(path: str | Path, extension: str = "atr") -> list[tuple[int, int]]:
    """Ventricular flutter/fibrillation episodes, (start, end) samples between '[' and ']' annotations.

    AAMI EC57 leaves these episodes out of beat-by-beat detection scoring.
    """
    import wfdb

    ann = wfdb.rdann(str(_record_base(path)), extension)
    episodes, start = [], None
    for sample, symbol in zip(ann.sample, ann.symbol):
        if symbol == "[":
            start = int(sample)
        elif symbol == "]" and start is not None:
            episodes.append((start, int(sample)))
            start = None
    if start is not None:
        episodes.append((start, int(ann.sample[-1])))
    return episodes
