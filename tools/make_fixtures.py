"""Rebuild tests/fixtures/: one-minute excerpts of four DS1 mitdb records with their annotations
(208 from the start: N, V, F; 209 from 560 s: 119 S beats; 201 from 1,450 s: S and V; 223 from
580 s: 94 V beats), and 20 s excerpts of one healthy-control and one myocardial-infarction PTB
record (lead II); and the 208 excerpt as EDF+ (tests/fixtures/edf/208.edf, labels MLII and V1, in uV) to
check that EDF and WFDB of the same signal give the same beats and labels.

    python tools/make_fixtures.py --mitdb ../shared/data/mitdb --ptbdb ../shared/data/ptbdb
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import wfdb

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures"


MITDB_EXCERPTS = {"208": 0, "209": 560, "201": 1450, "223": 580}  # record -> start (s) of its minute


def excerpt(src: Path, dest: Path, seconds: float, annotate: bool, start_s: float = 0) -> None:
    rec = wfdb.rdrecord(str(src))
    a, n = int(start_s * rec.fs), int(seconds * rec.fs)
    digital = rec.d_signal if rec.d_signal is not None else rec.adc()
    dest.parent.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(dest.name, fs=rec.fs, units=rec.units, sig_name=rec.sig_name, d_signal=digital[a:a + n], fmt=rec.fmt,
                adc_gain=rec.adc_gain, baseline=rec.baseline, comments=rec.comments, write_dir=str(dest.parent))
    if annotate:
        ann = wfdb.rdann(str(src), "atr", sampfrom=a, sampto=a + n - 1)
        wfdb.wrann(dest.name, "atr", np.asarray(ann.sample) - a, symbol=ann.symbol, aux_note=ann.aux_note, fs=rec.fs,
                   write_dir=str(dest.parent))


def edf_copy(record: Path, dest: Path) -> None:
    """The WFDB excerpt as EDF+, each lead in uV (16-bit, its own physical range): a unit conversion to honour."""
    from edfio import Edf, EdfSignal

    rec = wfdb.rdrecord(str(record))
    signals = [EdfSignal(rec.p_signal[:, i] * 1000, rec.fs, label=name, physical_dimension="uV")
               for i, name in enumerate(rec.sig_name)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    Edf(signals).write(dest)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", required=True)
    p.add_argument("--ptbdb", required=True)
    args = p.parse_args()
    for name, start_s in MITDB_EXCERPTS.items():
        excerpt(Path(args.mitdb) / name, OUT / "mitdb" / name, 60, annotate=True, start_s=start_s)
    edf_copy(OUT / "mitdb" / "208", OUT / "edf" / "208.edf")
    for reason in ("Healthy control", "Myocardial infarction"):
        header = next(h for h in sorted(Path(args.ptbdb).glob("patient*/*.hea")) if f"Reason for admission: {reason}" in h.read_text())
        excerpt(header.with_suffix(""), OUT / "ptbdb" / header.parent.name / header.stem, 20, annotate=False)
        print(reason, "->", header.parent.name, header.stem)


if __name__ == "__main__":
    main()
