"""Classify heartbeats with a shipped model, a trained checkpoint or an exported ONNX model.

    ecgnet predict samples/mitbih_beats.csv                         # shipped model 'mitbih'
    ecgnet predict --record ../shared/data/mitdb/208 --out out/208  # shipped model 'mitbih-rr'
    ecgnet predict --checkpoint log/<run>/best.pt samples/mitbih_beats.npy --json
    ecgnet predict --checkpoint model.onnx --record rec.hea          # ONNX Runtime, no PyTorch
    ecgnet predict --min-confidence 0.9 samples/mitbih_beats.csv    # 'uncertain' below 0.9
    ecgnet predict --record holter/ --out out/ --workers 4          # every recording in a folder
    ecgnet predict --record night.edf --lead "ECG II"               # EDF / EDF+
    my_sensor | ecgnet predict --stream --fs 250                     # beats while the signal comes in

Files hold one or many beats: rows of 187 samples (125 Hz, [0, 1], zero-padded),
optionally with the true label as a 188th value (.csv/.csv.gz/.csv.xz, .npy, .mat).
With --record, a whole recording (WFDB record, EDF/EDF+/BDF file, or a .csv/.npy signal
with --fs) is cut into beats by the paper's recipe and every beat is labelled. Several
recordings (paths, folders searched recursively, globs) are labelled in a process pool:
one folder per recording under --out and a summary.csv over all; a recording that fails
is reported with its reason and the others still finish (exit code 1 if any failed).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..constants import BACKENDS, DEFAULT_DETECTOR, DEFAULT_MODEL, DEFAULT_RECORD_MODEL, DETECTORS, DEVICES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help=f"a shipped model name (ecgnet models), a best.pt / last.pt, a .safetensors model file "
                   f"or a .onnx export (default: '{DEFAULT_MODEL}' for beat files, '{DEFAULT_RECORD_MODEL}' for --record)")
    p.add_argument("files", nargs="*", help="beat files")
    p.add_argument("--record", nargs="+", metavar="PATH", help="whole recordings: WFDB records (NAME or NAME.hea), EDF/BDF "
                   "files, .csv/.npy signals with --fs, folders or globs of them")
    p.add_argument("--lead", help="--record: lead name (default MLII / II, else the first ECG channel)")
    p.add_argument("--fs", type=float, help="--record: sampling rate of a .csv/.npy signal in Hz")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=f"--record: beat detector (default {DEFAULT_DETECTOR})")
    p.add_argument("--min-confidence", type=float, metavar="P",
                   help="call a beat 'uncertain' when its calibrated top probability is below P (0 < P < 1)")
    p.add_argument("--out", default="predictions", help="--record: output folder (beats.csv, summary.json, strip.png; "
                   "for several recordings one folder each and summary.csv)")
    p.add_argument("--stream", nargs="?", const="-", metavar="FILE", help="label a live signal: samples from stdin "
                   "(or FILE), one per line or --format f32; prints each beat as soon as it is cut (needs --fs)")
    p.add_argument("--format", choices=("text", "f32"), default="text", help="--stream: one number per line, or little-endian float32")
    p.add_argument("--follow", action="store_true", help="--stream FILE: keep reading as the file grows (like tail -f)")
    p.add_argument("--workers", type=int, default=0, help="--record with several recordings: processes (default: one per core)")
    p.add_argument("--start", type=float, default=0.0, help="--record: strip start in seconds")
    p.add_argument("--seconds", type=float, default=15.0, help="--record: strip length in seconds")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="torch, or onnxruntime (no PyTorch needed) for a .onnx model or a shipped model; auto: onnxruntime "
                   "for .onnx files and, when it is installed, for the shipped models")
    p.add_argument("--device", default="auto", choices=DEVICES, help="torch backend: device")


def load_classifier(args: argparse.Namespace):
    """The model to label with: ONNX Runtime for .onnx files (torch is never imported then), else PyTorch."""
    from ..serving.batch import choose_backend
    from ..serving.batch import load_classifier as load

    spec = args.checkpoint or (DEFAULT_RECORD_MODEL if args.record or args.stream else DEFAULT_MODEL)
    if choose_backend(spec, args.backend)[0] == "onnxruntime":
        return load(spec, args.backend)
    from ..runtime import configure_process

    configure_process(0, args.device, deterministic=False)
    return load(spec, args.backend, args.device)


def run(args: argparse.Namespace) -> int:
    from ..errors import EcgnetError
    from ..serving.labelling import check_min_confidence, label_beat_files

    if not args.files and not args.record and not args.stream:
        raise EcgnetError("nothing to predict: give beat files, a recording with --record PATH, or --stream")
    check_min_confidence(args.min_confidence)
    if args.stream:
        return predict_stream(args)
    if args.record:
        from ..serving.batch import find_records
        from ..signals.records import read_recording

        records = find_records(args.record)
        if len(records) > 1 or Path(args.record[0]).is_dir():
            return predict_records(records, args)
        if record_level(args):
            return predict_verdict(load_classifier(args), records[0], args)
        recording = read_recording(records[0], args.lead, args.fs)  # input errors first: before loading a model
        return predict_record(load_classifier(args), recording, args)
    classifier = load_classifier(args)
    if getattr(classifier, "record_level", False):
        raise EcgnetError(f"{classifier.name} is a record-level model: it judges whole recordings, not beat files; "
                          "pass them with --record PATH")
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


def label_job(args: argparse.Namespace):
    from ..serving.batch import LabelJob

    return LabelJob(args.checkpoint or DEFAULT_RECORD_MODEL, args.backend, args.detector, args.lead, args.fs,
                    args.min_confidence, args.start, args.seconds)


def predict_record(classifier, recording, args: argparse.Namespace) -> int:
    from ..serving.batch import label_to_folder

    s = label_to_folder(classifier, recording, Path(args.out), label_job(args))
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{s['record']} (lead {s['lead']}, {s['fs']:g} Hz, {s['seconds'] / 60:.1f} min), model {s['model']}: {s['classified']} beats "
          f"classified ({s['detected']} detected, {s['not_cut']} not cut), mean heart rate {s['mean_heart_rate_bpm']:.0f} bpm")
    for name, n in s["per_class"].items():
        print(f"  {name:<10}{n:>7}  {100 * n / s['classified']:5.1f}%")
    if "ectopic_share" in s:
        print(f"  ectopic (S+V+F): {100 * s['ectopic_share']:.1f}%")
    print(f"  in irregular rhythm (as in atrial fibrillation; S calls there become N): {100 * s['irregular_rhythm_share']:.1f}%")
    print(f"wrote {args.out}/beats.csv, summary.json, strip.png")
    return 0


def record_level(args: argparse.Namespace) -> bool:
    """Whether --checkpoint names a record-level model (one verdict per recording), read from its card or checkpoint."""
    from ..serving.batch import choose_backend

    if not args.checkpoint or choose_backend(args.checkpoint, args.backend)[0] == "onnxruntime":
        return False
    from ..errors import EcgnetError
    from ..models.pretrained import is_record_checkpoint

    try:
        return is_record_checkpoint(args.checkpoint)
    except EcgnetError:  # reported when the model is loaded, after the recording's own errors
        return False


def predict_verdict(predictor, record: Path, args: argparse.Namespace) -> int:
    """One recording judged by a record-level model: its verdict printed, summary.json written."""
    from ..serving.diagnosis import judge_to_folder

    s = judge_to_folder(predictor, record, Path(args.out), args.detector)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    p_key = next(k for k in s if k.startswith("p_"))
    print(f"{s['record']} ({s['leads']}: {', '.join(s['leads_read'])}; {s['seconds']:.1f} s, {s['beats_read']} beats), model {s['model']}: "
          f"{s['record_class']} ({p_key} {s[p_key]:.3f}, threshold {s['threshold']:.3f})")
    print(f"wrote {args.out}/summary.json")
    return 0


def predict_records(records: list, args: argparse.Namespace) -> int:
    """Several recordings in a process pool; exit code 1 when any failed."""
    import sys

    from ..serving.batch import label_many

    rows = label_many(records, Path(args.out), label_job(args), args.workers)
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(f"error: {r['path']}: {r['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{len(rows) - len(failed)} of {len(rows)} recordings labelled; wrote {args.out}/summary.csv and one folder per recording")
    return 1 if failed else 0


def predict_stream(args: argparse.Namespace) -> int:
    """One CSV line per beat (time_s, sample, class, name, probability) as soon as the beat can be cut."""
    import sys

    from ..errors import EcgnetError
    from ..serving.labelling import verdicts
    from ..signals.records import MAX_FS, MIN_FS
    from ..signals.streaming import BeatStream, sample_chunks, stream_context

    if args.fs is None or not MIN_FS <= args.fs <= MAX_FS:
        raise EcgnetError(f"--stream needs the signal's sampling rate: --fs HZ ({MIN_FS:g} to {MAX_FS:g}), e.g. --fs 250")
    classifier = load_classifier(args)
    stream = BeatStream(args.fs, args.detector, classifier.before_r_s, wait_for_next_beat=classifier.needs_rhythm,
                        keep_templates=classifier.needs_template)
    source = sys.stdin.buffer if args.stream == "-" else open(args.stream, "rb")
    print("time_s,sample,class,name,probability,irregular_rhythm", flush=True)
    def emit(beats: list) -> None:
        if not beats:
            return
        context = stream_context(beats)
        probs = classifier.predict_proba(context)
        top, names = verdicts(probs, classifier.class_names, args.min_confidence)
        for b, k, name, p, flag in zip(beats, top, names, probs.max(1), context.irregular):
            print(f"{b.sample / args.fs:.3f},{b.sample},{k},{name},{p:.4f},{int(flag)}", flush=True)

    try:
        for chunk in sample_chunks(source, args.format, args.follow):
            emit(stream.push(chunk))
        emit(stream.finish())
    except KeyboardInterrupt:
        pass
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return 0
