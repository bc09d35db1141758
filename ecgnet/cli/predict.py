"""Classify heartbeats with a shipped model, a trained checkpoint or an exported ONNX model.

    ecgnet predict samples/mitbih_beats.csv                         # shipped model 'mitbih'
    ecgnet predict --record ../shared/data/mitdb/208 --out out/208  # shipped model 'mitbih-rr'
    ecgnet predict --checkpoint log/<run>/best.pt samples/mitbih_beats.npy --json
    ecgnet predict --checkpoint model.onnx --record rec.hea          # ONNX Runtime, no PyTorch
    ecgnet predict --min-confidence 0.9 samples/mitbih_beats.csv    # 'uncertain' below 0.9

Files hold one or many beats: rows of 187 samples (125 Hz, [0, 1], zero-padded),
optionally with the true label as a 188th value (.csv/.csv.gz/.csv.xz, .npy, .mat).
With --record, a whole recording (WFDB record, or a .csv/.npy signal with --fs) is
cut into beats by the paper's recipe and every beat is labelled.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..constants import BACKENDS, DEFAULT_DETECTOR, DEFAULT_MODEL, DEFAULT_RECORD_MODEL, DETECTORS, DEVICES, ONNX_SUFFIX

HELP = "label beat files or whole recordings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help=f"a shipped model name (ecgnet models), a best.pt / last.pt, a .safetensors model file "
                   f"or a .onnx export (default: '{DEFAULT_MODEL}' for beat files, '{DEFAULT_RECORD_MODEL}' for --record)")
    p.add_argument("files", nargs="*", help="beat files")
    p.add_argument("--record", help="a whole recording: WFDB record path (NAME or NAME.hea) or a .csv/.npy signal with --fs")
    p.add_argument("--lead", help="--record: lead name (default MLII / II, else the first channel)")
    p.add_argument("--fs", type=float, help="--record: sampling rate of a .csv/.npy signal in Hz")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=f"--record: beat detector (default {DEFAULT_DETECTOR})")
    p.add_argument("--min-confidence", type=float, metavar="P",
                   help="call a beat 'uncertain' when its calibrated top probability is below P (0 < P < 1)")
    p.add_argument("--out", default="predictions", help="--record: output folder (beats.csv, summary.json, strip.png)")
    p.add_argument("--start", type=float, default=0.0, help="--record: strip start in seconds")
    p.add_argument("--seconds", type=float, default=15.0, help="--record: strip length in seconds")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="torch, or onnxruntime for a .onnx model (no PyTorch needed); auto picks by the file's suffix")
    p.add_argument("--device", default="auto", choices=DEVICES, help="torch backend: device")


def load_classifier(args: argparse.Namespace):
    """The model to label with: ONNX Runtime for .onnx files (torch is never imported then), else PyTorch."""
    from ..errors import EcgnetError

    spec = args.checkpoint or (DEFAULT_RECORD_MODEL if args.record else DEFAULT_MODEL)
    onnx_file = Path(spec).suffix == ONNX_SUFFIX
    backend = args.backend if args.backend != "auto" else ("onnxruntime" if onnx_file else "torch")
    if backend == "onnxruntime":
        if not onnx_file:
            raise EcgnetError(f"--backend onnxruntime runs .onnx files, not {spec}; export one with "
                              f"'ecgnet export --checkpoint {spec} --onnx model.onnx'")
        from ..onnx_backend import OnnxPredictor
        return OnnxPredictor(spec)
    from ..inference import Predictor
    from ..runtime import configure_process

    configure_process(0, args.device)
    return Predictor.from_checkpoint(spec, args.device)


def run(args: argparse.Namespace) -> int:
    from ..errors import EcgnetError
    from ..labelling import check_min_confidence, label_beat_files

    if not args.files and not args.record:
        raise EcgnetError("nothing to predict: give beat files, or a recording with --record PATH")
    check_min_confidence(args.min_confidence)
    if args.record:
        from ..records import read_recording

        recording = read_recording(args.record, args.lead, args.fs)  # input errors first: before loading a model
        return predict_record(load_classifier(args), recording, args)
    classifier = load_classifier(args)
    rows = label_beat_files(classifier, args.files, args.min_confidence)
    if args.json:
        print(json.dumps({"model": classifier.name, "beats": rows}, indent=2))
        return 0
    print(f"model: {classifier.name}")
    print(f"{'file':<28}{'beat':>5}  {'predicted':<12}{'prob':>7}  true")
    for r in rows:
        true = r.get("true_name", "")
        mark = "" if not true else ("  ok" if true == r["name"] else "  MISS")
        print(f"{r['file'][-28:]:<28}{r['beat']:>5}  {r['class']:>2} {r['name']:<9}{r['probability']:>7.3f}  {true}{mark}")
    known = [r for r in rows if "true_class" in r]
    if known:
        decided = [r for r in known if r["class"] >= 0]
        print(f"\n{sum(r['true_class'] == r['class'] for r in decided)}/{len(decided)} correct"
              + (f" ({len(known) - len(decided)} uncertain)" if len(decided) < len(known) else ""))
    return 0


def predict_record(classifier, recording, args: argparse.Namespace) -> int:
    from ..atomic import write_text
    from ..labelling import label_record, plot_strip, write_beat_table

    result = label_record(classifier, recording, args.detector, args.min_confidence)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_beat_table(result, out / "beats.csv")
    plot_strip(result, recording, out / "strip.png", args.start, args.seconds)
    s = result["summary"]
    write_text(out / "summary.json", json.dumps(s, indent=2) + "\n")
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{s['record']} (lead {s['lead']}, {s['fs']:g} Hz, {s['seconds'] / 60:.1f} min), model {s['model']}: {s['classified']} beats "
          f"classified ({s['detected']} detected, {s['not_cut']} not cut), mean heart rate {s['mean_heart_rate_bpm']:.0f} bpm")
    for name, n in s["per_class"].items():
        print(f"  {name:<10}{n:>7}  {100 * n / s['classified']:5.1f}%")
    if "ectopic_share" in s:
        print(f"  ectopic (S+V+F): {100 * s['ectopic_share']:.1f}%")
    print(f"wrote {out}/beats.csv, summary.json, strip.png")
    return 0
