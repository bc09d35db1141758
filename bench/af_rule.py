"""The irregular-rhythm (AF) rule measured with and without the intervals around ventricular ectopic beats (#33).

    python bench/af_rule.py [--mitdb ../shared/data/mitdb] [--svdb ../shared/data/svdb] [--model mitbih-rr]

The shipped rule (``ecgnet.signals.fibrillation``) judges each beat's 128 surrounding R-R intervals, ectopic ones
included, so sinus rhythm with frequent PVCs can read as fibrillation and silence true S calls. The variant drops,
before judging, the interval before each beat the model calls V and the one after it (its coupling interval and
compensatory pause: the "NN intervals" of heart-rate variability). The model's probabilities are the same; only
which S calls become N changes. Scored beat by beat (EC57, ``ecgnet.serving.bxb``) on the shared SVDB records (where
a choice may be made) and on MIT-BIH DS2 (reported). Results: bench/results/af_rule.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT, save, table

from ecgnet.serving.bxb import compare_record, reference_beats, score
from ecgnet.serving.inference import Predictor
from ecgnet.signals.context import PRE_RR, BeatContext
from ecgnet.signals.fibrillation import gate_premature, irregular_rhythm
from ecgnet.signals.preprocess import check_signal, cut_detected_beats
from ecgnet.signals.records import DS2, read_recording
from ecgnet.signals.rhythm import rhythm_features


def without_ectopy(pre_rr: np.ndarray, ventricular: np.ndarray) -> np.ndarray:
    """``irregular_rhythm`` judged on the intervals not adjacent to a V beat, mapped back to every beat."""
    adjacent = ventricular | np.roll(ventricular, 1) & (np.arange(len(ventricular)) > 0)
    keep = np.flatnonzero(~adjacent)
    if len(keep) < 2:
        return np.zeros(len(pre_rr), bool)
    flags = irregular_rhythm(pre_rr[keep])
    return flags[np.clip(np.searchsorted(keep, np.arange(len(pre_rr))), 0, len(keep) - 1)]


def label_both(predictor: Predictor, record: Path) -> tuple[dict, dict, float]:
    """The record's comparison with its annotations under the shipped rule and under the variant, and the share of
    beats each flags as irregular."""
    recording = read_recording(record)
    signal = check_signal(recording.signal, recording.fs, recording.name)
    cut, samples = cut_detected_beats(signal, recording.fs, "fused", predictor.before_r_s)
    context, _ = BeatContext.of_recording(cut.beats, samples, cut.index, recording.fs)
    probs = (predictor.logits(context) / predictor.temperature).softmax(1).numpy()
    every = rhythm_features(samples, recording.fs)
    ventricular = np.zeros(len(samples), bool)
    ventricular[cut.index] = probs.argmax(1) == predictor.class_names.index("V")
    variant = without_ectopy(every[:, PRE_RR], ventricular)[cut.index]
    reference, labels, fs = reference_beats(record, "atr")
    out = {}
    for name, flags in (("shipped", context.irregular), ("without V intervals", variant)):
        gated = gate_premature(probs, flags, predictor.class_names)
        out[name] = (compare_record(reference, labels, samples[cut.index], gated, fs), float(flags.mean()))
    return out


def main() -> None:
    shared = ROOT.parent / "shared" / "data"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", type=Path, default=shared / "mitdb")
    p.add_argument("--svdb", type=Path, default=shared / "svdb")
    p.add_argument("--model", default="mitbih-rr")
    args = p.parse_args()
    predictor = Predictor.from_checkpoint(args.model, "cpu")
    sets = {"SVDB (shared, 23)": sorted(h.with_suffix("") for h in args.svdb.glob("*.hea")),
            "MIT-BIH DS2 (22)": [args.mitdb / r for r in DS2]}
    rows = []
    for database, records in sets.items():
        runs = [label_both(predictor, r) for r in records]
        for rule in ("shipped", "without V intervals"):
            g = score({r.name: run[rule][0] for r, run in zip(records, runs)}, predictor.class_names)["gross"]
            rows.append({"records": database, "rule": rule, "beats flagged": f"{100 * np.mean([run[rule][1] for run in runs]):.1f}%",
                         "accuracy": f"{g['accuracy']:.1f}", "S Se/+P": f"{g['per_class']['S']['se']:.1f} / {g['per_class']['S']['ppv']:.1f}",
                         "V Se/+P": f"{g['per_class']['V']['se']:.1f} / {g['per_class']['V']['ppv']:.1f}",
                         "N called S": f"{g['n_called_s']:.2f}%"})
            print(rows[-1], flush=True)
    print(table(rows, list(rows[0])))
    save("af_rule", {"rows": rows, "model": args.model})


if __name__ == "__main__":
    main()
