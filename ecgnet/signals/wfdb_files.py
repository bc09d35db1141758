"""WFDB records read with NumPy: the header and the common uncompressed formats, equal to the ``wfdb`` package.

Importing ``wfdb`` costs about half a second (it loads pandas and ``scipy.signal``), more than reading a 30-minute
record. A single-segment record whose signals are stored one sample per frame, without skew or byte offset, in
format 212, 16, 61, 80, 160, 24 or 32 (every PhysioNet ECG database ecgnet was tried on) is read here; anything else
returns None and ``ecgnet.signals.records`` reads it with ``wfdb``. Values are ``(digital - baseline) / gain`` in
float64 with the format's invalid-sample code as NaN, as ``wfdb.rdrecord(...).p_signal``; tests/test_records.py
compares both on real records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SIMPLE_FORMATS = {"212": 12, "16": 16, "61": 16, "80": 8, "160": 16, "24": 24, "32": 32}  # format -> bits per sample
DEFAULT_FS, DEFAULT_GAIN = 250.0, 200.0  # the WFDB defaults for a header that leaves them out
RECORD_LINE = re.compile(r"^(\S+?)(/\d+)?\s+(\d+)(?:\s+([0-9.eE+-]+)(?:/[0-9.eE+-]+(?:\([0-9.eE+-]+\))?)?(?:\s+(\d+))?)?")
SIGNAL_LINE = re.compile(r"^(\S+)\s+(\S+)(?:\s+([0-9.eE+-]+)(?:\(([-\d]+)\))?(?:/(\S*))?)?"
                         r"(?:\s+(-?\d+))?(?:\s+(-?\d+))?(?:\s+(-?\d+))?(?:\s+(-?\d+))?(?:\s+(\d+))?(?:\s+(.*))?$")


@dataclass
class Header:
    """A WFDB header's record line and signal lines (attribute names as ``wfdb.Record``'s)."""
    fs: float
    sig_len: int
    file_name: list[str] = field(default_factory=list)
    fmt: list[str] = field(default_factory=list)
    adc_gain: list[float] = field(default_factory=list)
    baseline: list[int] = field(default_factory=list)
    sig_name: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def read_header(path: Path) -> Header | None:
    """The header at ``path`` (NAME.hea) when it describes a record this module reads, else None (a damaged header
    too: ``wfdb`` then names what is wrong with it)."""
    try:
        return _parse_header(path.read_text(errors="replace").splitlines())
    except ValueError:
        return None


def _parse_header(lines: list[str]) -> Header | None:
    comments = [line[1:].strip() for line in lines if line.startswith("#")]
    lines = [line.split("#", 1)[0].strip() for line in lines if not line.startswith("#")]
    lines = [line for line in lines if line]
    record = RECORD_LINE.match(lines[0]) if lines else None
    if record is None or record.group(2) or int(record.group(3)) != len(lines) - 1 or not int(record.group(3)):
        return None  # multi-segment, malformed or signal-less: wfdb's to read or to refuse
    head = Header(float(record.group(4) or DEFAULT_FS), int(record.group(5) or 0), comments=comments)
    for line in lines[1:]:
        sig = SIGNAL_LINE.match(line)
        if sig is None or sig.group(2) not in SIMPLE_FORMATS:
            return None  # samples per frame, skew, byte offset or another format
        gain = float(sig.group(3) or 0) or DEFAULT_GAIN
        zero = int(sig.group(7) or 0)
        head.file_name.append(sig.group(1))
        head.fmt.append(sig.group(2))
        head.adc_gain.append(gain)
        head.baseline.append(int(sig.group(4)) if sig.group(4) is not None else zero)
        head.sig_name.append((sig.group(11) or "").strip())
    return head


def decode(raw: bytes, fmt: str) -> np.ndarray:
    """Digital samples (int32, or int64 for format 32) of a signal file's bytes in ``fmt``."""
    if fmt == "212":  # two samples in three bytes; a last lone sample may come in two
        data = np.frombuffer(raw + bytes(-len(raw) % 3), np.uint8).reshape(-1, 3)
        middle = data[:, 1].astype(np.int32)
        pairs = np.empty(2 * len(data), np.int32)
        pairs[0::2] = data[:, 0] | (middle & 0x0F) << 8
        pairs[1::2] = data[:, 2] | (middle & 0xF0) << 4
        return (pairs ^ 0x800) - 0x800  # 12-bit two's complement
    if fmt == "24":
        data = np.frombuffer(raw[:len(raw) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        values = data[:, 0] | data[:, 1] << 8 | data[:, 2] << 16
        return values - ((values & 0x800000) << 1)
    dtype = {"16": "<i2", "61": ">i2", "80": "u1", "160": "<u2", "32": "<i4"}[fmt]
    values = np.frombuffer(raw[:len(raw) // np.dtype(dtype).itemsize * np.dtype(dtype).itemsize], dtype)
    values = values.astype(np.int64 if fmt == "32" else np.int32)
    return values - {"80": 128, "160": 32768}.get(fmt, 0)


def read_signal(base: Path, head: Header, channel: int) -> np.ndarray:
    """Channel ``channel`` of the record in physical units (float64; the format's invalid samples NaN)."""
    name, fmt = head.file_name[channel], head.fmt[channel]
    shared = [k for k, f in enumerate(head.file_name) if f == name]  # signals interleaved in this file, frame by frame
    samples = decode((base.parent / name).read_bytes(), fmt)
    frames = min(head.sig_len or len(samples), len(samples) // len(shared))
    digital = samples[:frames * len(shared)].reshape(-1, len(shared))[:, shared.index(channel)]
    physical = (digital.astype(np.float64) - head.baseline[channel]) / head.adc_gain[channel]
    physical[digital == -(1 << (SIMPLE_FORMATS[fmt] - 1))] = np.nan
    return physical
