"""Classify heartbeats with a trained checkpoint.

    ecgnet predict --checkpoint log/<run>/best.pt samples/mitbih_beats.csv
    ecgnet predict --checkpoint log/<run>/best.pt samples/mitbih_beats.npy --json
    ecgnet predict --checkpoint log/<run>/best.pt --record ../shared/data/mitdb/208 --out out/208

Files hold one or many beats: rows of 187 samples (125 Hz, [0, 1], zero-padded),
optionally with the true label as a 188th value (.csv/.csv.gz/.csv.xz, .npy, .mat).
With --record, a whole recording (WFDB record, or a .csv/.npy signal with --fs) is
cut into beats by the paper's recipe and every beat is labelled.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..constants import DEFAULT_DETECTOR, DETECTORS, DEVICES

HELP = "label beat files or whole recordings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a best.pt / last.pt written by ecgnet train")
    p.add_argument("files", nargs="*", help="beat files")
    p.add_argument("--record", help="a whole recording: WFDB record path (NAME or NAME.hea) or a .csv/.npy signal with --fs")
    p.add_argument("--lead", help="--record: lead name (default MLII / II, else the first channel)")
    p.add_argument("--fs", type=float, help="--record: sampling rate of a .csv/.npy signal in Hz")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=f"--record: beat detector (default {DEFAULT_DETECTOR})")
    p.add_argument("--out", default="predictions", help="--record: output folder (beats.csv, summary.json, strip.png)")
    p.add_argument("--start", type=float, default=0.0, help="--record: strip start in seconds")
    p.add_argument("--seconds", type=float, default=15.0, help="--record: strip length in seconds")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--device", default="auto", choices=DEVICES)


def run(args: argparse.Namespace) -> int:
    from ..errors import EcgnetError
    from ..inference import Predictor
    from ..runtime import configure_process

    if not args.files and not args.record:
        raise EcgnetError("nothing to predict: give beat files, or a recording with --record PATH")
    configure_process(0, args.device)
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    if args.record:
        return predict_record(predictor, args)
    rows = predict_files(predictor, args.files)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'file':<28}{'beat':>5}  {'predicted':<12}{'prob':>7}  true")
    for r in rows:
        true = r.get("true_name", "")
        mark = "" if not true else ("  ok" if true == r["name"] else "  MISS")
        print(f"{r['file'][-28:]:<28}{r['beat']:>5}  {r['class']} {r['name']:<10}{r['probability']:>7.3f}  {true}{mark}")
    known = [r for r in rows if "true_class" in r]
    if known:
        print(f"\n{sum(r['true_class'] == r['class'] for r in known)}/{len(known)} correct")
    return 0


def predict_files(predictor, paths: list[str]) -> list[dict]:
    """One row per beat of each file: predicted class, probabilities, and the true label when the file has one."""
    from ..beatfiles import read_beats_file

    rows = []
    names = predictor.class_names
    for path in paths:
        beats, labels = read_beats_file(path)
        probs = predictor.predict_proba(beats)
        for i, p in enumerate(probs):
            k = int(p.argmax())
            row = {"file": path, "beat": i + 1, "class": k, "name": names[k], "probability": round(float(p[k]), 6),
                   "probabilities": dict(zip(names, (round(float(v), 6) for v in p)))}
            if labels is not None:
                true = int(labels[i])
                row["true_class"] = true
                row["true_name"] = names[true] if true < len(names) else str(true)
            rows.append(row)
    return rows


def predict_record(predictor, args: argparse.Namespace) -> int:
    from ..inference import label_record, plot_strip, write_beat_table
    from ..records import read_recording

    recording = read_recording(args.record, args.lead, args.fs)
    result = label_record(predictor, recording, args.detector)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_beat_table(result, out / "beats.csv")
    plot_strip(result, recording, out / "strip.png", args.start, args.seconds)
    s = result["summary"]
    (out / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{s['record']} (lead {s['lead']}, {s['fs']:g} Hz, {s['seconds'] / 60:.1f} min): {s['classified']} beats classified"
          f" ({s['detected']} detected, {s['not_cut']} not cut), mean heart rate {s['mean_heart_rate_bpm']:.0f} bpm")
    for name, n in s["per_class"].items():
        print(f"  {name:<8}{n:>7}  {100 * n / s['classified']:5.1f}%")
    if "ectopic_share" in s:
        print(f"  ectopic (S+V+F): {100 * s['ectopic_share']:.1f}%")
    print(f"wrote {out}/beats.csv, summary.json, strip.png")
    return 0
