"""Rebuild tests/fixtures/: one-minute excerpts of four DS1 mitdb records with their annotations
(208 from the start: N, V, F; 209 from 560 s: 119 S beats; 201 from 1,450 s: S and V; 223 from
580 s: 94 V beats), and 20 s excerpts of one healthy-control and one myocardial-infarction PTB
record (lead II); and the 208 excerpt as EDF+ (tests/fixtures/edf/208.edf, labels MLII and V1, in uV) to
check that EDF and WFDB of the same signal give the same beats and labels; with --ptbxl, 13 PTB-XL records
(an MI and a NORM record of each of folds 1, 7, 8 and 9 as they are, 2 more MI ones, one of another diagnosis)
with their database rows and the statement table, a 3-lead excerpt with lead II and one without, and 2 s of one.

    python tools/make_fixtures.py --mitdb ../shared/data/mitdb --ptbdb ../shared/data/ptbdb --ptbxl ../shared/data/ptbxl
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


def ptbxl_fixtures(src: Path, dest: Path) -> None:
    """Real PTB-XL records of both classes in the train, validation and test folds, and three bad inputs cut from one."""
    import csv
    import shutil

    from ecgnet.data.ptbxl import read_statements

    statements = read_statements(src)
    chosen = [next(s for s in statements if s.fold == fold and s.label == label) for fold in (1, 7, 8, 9) for label in (0, 1)]
    chosen += [s for s in statements if s.label == 1 and s not in chosen][:2] + [next(s for s in statements if s.label < 0)]
    ids = {s.ecg_id for s in chosen}
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "scp_statements.csv", dest / "scp_statements.csv")
    with open(src / "ptbxl_database.csv", newline="") as f, open(dest / "ptbxl_database.csv", "w", newline="") as out:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row for row in reader if int(row["ecg_id"]) in ids)
    for s in chosen:
        (dest / s.path).parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".hea", ".dat"):
            shutil.copy(src / f"{s.path}{suffix}", dest / f"{s.path}{suffix}")
    record = wfdb.rdrecord(str(src / chosen[1].path))
    bad = dest / "bad"
    bad.mkdir(exist_ok=True)
    for name, leads, seconds in (("three_leads", ["I", "II", "III"], 10), ("no_lead_ii", ["V1", "V2", "V3"], 10), ("two_seconds", None, 2)):
        idx = [record.sig_name.index(n) for n in leads] if leads else list(range(len(record.sig_name)))
        n = int(seconds * record.fs)
        wfdb.wrsamp(name, fs=record.fs, units=[record.units[i] for i in idx], sig_name=[record.sig_name[i] for i in idx],
                    p_signal=record.p_signal[:n, idx], fmt=["16"] * len(idx), write_dir=str(bad))
    print("ptbxl:", sorted(ids))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", required=True)
    p.add_argument("--ptbdb", required=True)
    p.add_argument("--ptbxl", help="also write tests/fixtures/ptbxl from this PTB-XL folder")
    args = p.parse_args()
    if args.ptbxl:
        ptbxl_fixtures(Path(args.ptbxl), OUT / "ptbxl")
    for name, start_s in MITDB_EXCERPTS.items():
        excerpt(Path(args.mitdb) / name, OUT / "mitdb" / name, 60, annotate=True, start_s=start_s)
    edf_copy(OUT / "mitdb" / "208", OUT / "edf" / "208.edf")
    for reason in ("Healthy control", "Myocardial infarction"):
        header = next(h for h in sorted(Path(args.ptbdb).glob("patient*/*.hea")) if f"Reason for admission: {reason}" in h.read_text())
        excerpt(header.with_suffix(""), OUT / "ptbdb" / header.parent.name / header.stem, 20, annotate=False)
        print(reason, "->", header.parent.name, header.stem)


if __name__ == "__main__":
    main()
