"""Rebuild tests/fixtures/: one minute of mitdb record 208 with its annotations, and 20 s
excerpts of one healthy-control and one myocardial-infarction PTB record (lead II).

    python tools/make_fixtures.py --mitdb ../shared/data/mitdb --ptbdb ../shared/data/ptbdb
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import wfdb

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures"


def excerpt(src: Path, dest: Path, seconds: float, annotate: bool) -> None:
    rec = wfdb.rdrecord(str(src))
    n = int(seconds * rec.fs)
    dest.parent.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(dest.name, fs=rec.fs, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal[:n] if rec.d_signal is not None
                else rec.adc()[:n], fmt=rec.fmt, adc_gain=rec.adc_gain, baseline=rec.baseline, comments=rec.comments,
                write_dir=str(dest.parent))
    if annotate:
        ann = wfdb.rdann(str(src), "atr", sampto=n - 1)
        wfdb.wrann(dest.name, "atr", np.asarray(ann.sample), symbol=ann.symbol, aux_note=ann.aux_note, fs=rec.fs, write_dir=str(dest.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", required=True)
    p.add_argument("--ptbdb", required=True)
    args = p.parse_args()
    excerpt(Path(args.mitdb) / "208", OUT / "mitdb" / "208", 60, annotate=True)
    for reason in ("Healthy control", "Myocardial infarction"):
        header = next(h for h in sorted(Path(args.ptbdb).glob("patient*/*.hea")) if f"Reason for admission: {reason}" in h.read_text())
        excerpt(header.with_suffix(""), OUT / "ptbdb" / header.parent.name / header.stem, 20, annotate=False)
        print(reason, "->", header.parent.name, header.stem)


if __name__ == "__main__":
    main()
