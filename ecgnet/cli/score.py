"""Score ecgnet's beat labels against reference annotations, beat by beat (as WFDB's bxb, ANSI/AAMI EC57).

    ecgnet score path/to/svdb --out scores/svdb                 # label every annotated record, then score them
    ecgnet score path/to/mitdb/100 path/to/mitdb/200 --ann atr --out scores/two
    ecgnet score path/to/svdb --labels out/svdb --out scores/svdb   # score beats.csv folders written by predict --record

Reference beats within 150 ms of a labelled beat are matched; annotation symbols map to the AAMI classes
N, S, V, F, Q. Prints per record and pooled (gross) and averaged statistics: detection Se/+P, each class's
Se, +P and false-positive rate, accuracy, the share of N beats called S and V, the expected calibration error of
the matched beats' top probability, and the pooled confusion.
Writes OUT/score.json (everything, with the confusion of each record) and OUT/score.csv (a row per record).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..constants import DEFAULT_DETECTOR, DEFAULT_RECORD_MODEL, DETECTORS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("records", nargs="+", metavar="RECORD", help="WFDB records (NAME or NAME.hea) with annotations, or folders of them")
    p.add_argument("--ann", default="atr", help="extension of the reference annotation files (default: atr)")
    p.add_argument("--out", required=True, help="output folder: score.json, score.csv (and the labels, without --labels)")
    p.add_argument("--labels", metavar="DIR", help="score the beats.csv in DIR/<record>/ (ecgnet predict --record ... --out DIR) "
                                                   "instead of labelling the records now")
    p.add_argument("--checkpoint", default=DEFAULT_RECORD_MODEL, help=f"model to label with (default {DEFAULT_RECORD_MODEL})")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=f"beat detector (default {DEFAULT_DETECTOR})")
    p.add_argument("--lead", help="lead name (default MLII / II, else the first ECG channel)")
    p.add_argument("--workers", type=int, default=0, help="processes labelling the records (default: one per core)")
    p.add_argument("--json", action="store_true", help="print score.json instead of the table")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..atomic import write_text
    from ..errors import EcgnetError
    from ..serving.batch import LabelJob, find_records, label_many, output_names
    from ..serving.bxb import compare_labelled, reference_beats, score, score_rows

    records = [r for r in find_records(args.records) if r.suffix in ("", ".hea")]
    if not records:
        raise EcgnetError(f"no WFDB record in {', '.join(args.records)}: scoring needs NAME.hea / NAME.dat with annotations")
    for record in records:  # every record's reference before any labelling: one line for the first without one
        reference_beats(record, args.ann)
    out, names = Path(args.out), output_names(records)
    failed = {}
    if args.labels:
        folders = [Path(args.labels) / n for n in names]
    else:
        job = LabelJob(args.checkpoint, "auto", args.detector, args.lead, None, None, 0.0, 15.0)
        rows = label_many(records, out / "labels", job, args.workers)
        failed = {n: r["error"] for n, r in zip(names, rows) if r["status"] != "ok"}
        folders = [out / "labels" / n for n in names]
    comparisons = {}
    for record, name, folder in zip(records, names, folders):
        if name not in failed:
            comparisons[name], class_names = compare_labelled(record, folder / "beats.csv", args.ann)
    if not comparisons:
        raise EcgnetError("no record could be labelled: " + "; ".join(f"{n}: {e}" for n, e in failed.items()))
    result = score(comparisons, class_names) | {"failed": failed, "annotations": args.ann}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "score.json", json.dumps(result, indent=1, default=float) + "\n")
    write_text(out / "score.csv", csv_text(score_rows(result)))
    print(json.dumps(result, indent=1, default=float) if args.json else table(result))
    for name, error in failed.items():
        print(f"{name}: not scored: {error}", file=sys.stderr)
    return 1 if failed else 0


def csv_text(rows: list[dict]) -> str:
    def cell(v) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)
    return "\n".join([",".join(rows[0])] + [",".join(cell(v) for v in r.values()) for r in rows]) + "\n"


def table(result: dict) -> str:
    """Per record and pooled statistics, then the pooled confusion."""
    from ..metrics import ECE_BINS

    head = f"{'record':<12}{'beats':>7}{'det Se':>8}{'det +P':>8}{'acc':>7}" + "".join(f"{c + ' Se':>7}{c + ' +P':>7}" for c in "NSVF") \
        + f"{'N→S %':>7}{'N→V %':>7}"
    lines = [head]
    for name, s in [*result["records"].items(), ("gross", result["gross"])]:
        cells = [s["detection"]["se"], s["detection"]["ppv"], s["accuracy"]]
        cells += [s["per_class"][c][m] for c in "NSVF" for m in ("se", "ppv")] + [s["n_called_s"], s["n_called_v"]]
        widths = [8, 8, 7] + [7] * 8 + [7, 7]
        lines.append(f"{name:<12}{s['reference_beats']:>7}" + "".join(f"{v:>{w}.1f}" for v, w in zip(cells, widths)))
    a = result["average"]
    lines.append(f"{'average':<12}{'':>7}{a['detection']['se']:>8.1f}{a['detection']['ppv']:>8.1f}{a['accuracy']:>7.1f}"
                 + "".join(f"{a['per_class'][c][m]:>7.1f}" for c in "NSVF" for m in ("se", "ppv")))
    lines.append(f"expected calibration error of the matched beats' top probability ({ECE_BINS} bins): "
                 f"{result['gross']['ece']:.3f}")
    names = result["class_names"]
    lines += ["", "pooled confusion of matched beats (rows: reference, columns: ecgnet; missed / extra: detection)",
              f"{'':<8}" + "".join(f"{c:>8}" for c in names) + f"{'missed':>8}"]
    g = result["gross"]
    for c, row, missed in zip(names, g["confusion"], g["missed_per_class"]):
        lines.append(f"{c:<8}" + "".join(f"{v:>8}" for v in row) + f"{missed:>8}")
    lines.append(f"{'extra':<8}" + "".join(f"{v:>8}" for v in g["extra_per_class"]))
    return "\n".join(lines)
