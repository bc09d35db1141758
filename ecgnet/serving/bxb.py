"""Beat-by-beat comparison with reference annotations, as WFDB's ``bxb`` and ANSI/AAMI EC57 do.

Each reference beat (its annotation symbol mapped to an AAMI class) is matched to the labelled beat
nearest to it within ``MATCH_WINDOW_S`` (WFDB's ``compare_annotations``). Per record and pooled:
detection Se / +P; the N/S/V/F/Q confusion of the matched beats; each class's Se, +P and false-positive
rate, where a reference beat the detector missed counts against Se and a detection that matches no
reference beat counts against +P (``metrics.aami_scores``); the share of N beats called S and V; and the
expected calibration error of the matched beats' top probability (``--min-confidence`` means what it says
on these recordings when it is small).
"Gross" statistics pool every beat of every record; "average" ones are the mean over records of each
record's statistic (records without any beat of a class do not count for its Se, without any call of it
for its +P), as EC57 reports both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EcgnetError
from ..metrics import aami_scores, expected_calibration_error

MATCH_WINDOW_S = 0.15           # EC57's matching window
SCORED = ("N", "S", "V", "F")   # the classes EC57 scores (Q is reported in the confusion only)


def read_labelled_beats(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(R samples, class probabilities (n, k), class names) from a ``beats.csv`` of ``predict --record``; the call is
    the most probable class, so beats below ``--min-confidence`` (``uncertain``) are scored by their best guess."""
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise EcgnetError(f"{path} not found: label the record first (ecgnet predict --record REC --out DIR) or drop --labels") from None
    except (OSError, ValueError) as e:
        raise EcgnetError(f"{path} is not a beats.csv of ecgnet predict --record ({e.__class__.__name__}); label the record again") from None
    names = [c[2:] for c in table.columns if c.startswith("p_")]
    if "sample" not in table or not names:
        raise EcgnetError(f"{path} has no 'sample' and 'p_<class>' columns: it is not a beats.csv of ecgnet predict --record")
    return table["sample"].to_numpy(np.int64), table[[f"p_{c}" for c in names]].to_numpy(np.float64), names


def compare_record(reference: np.ndarray, labels: np.ndarray, samples: np.ndarray, probs: np.ndarray, fs: float) -> dict:
    """Match reference beats (``reference`` samples, AAMI class ``labels``) with labelled beats (``samples``, class
    probabilities ``probs`` (n, k)): the matched pairs' true and called classes and probabilities, and the calls of
    detections that match no reference beat."""
    from wfdb.processing import compare_annotations

    window = max(1, int(round(MATCH_WINDOW_S * fs)))
    if len(reference) and len(samples):
        match = compare_annotations(np.asarray(reference), np.asarray(samples), window).matching_sample_nums
    else:
        match = np.full(len(reference), -1)
    hit = match >= 0
    calls = probs.argmax(1)
    return {"true": labels[hit], "called": calls[match[hit]], "probs": probs[match[hit]], "extra": np.delete(calls, match[hit]),
            "reference": labels}


def statistics(comparison: dict, class_names: list[str]) -> dict:
    """Detection, confusion and class statistics of one comparison (a record's, or all records' pooled)."""
    k = len(class_names)
    true, called, extra, reference = comparison["true"], comparison["called"], comparison["extra"], comparison["reference"]
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (true, called), 1)
    n_reference = np.bincount(reference, minlength=k)
    tp = len(true)
    scores = aami_scores(true, called, tuple(class_names), SCORED, n_reference, extra)
    n_matched = confusion[class_names.index("N")].sum()
    return {"reference_beats": int(len(reference)), "detected_beats": int(tp + len(extra)),
            "detection": {"tp": tp, "fn": int(len(reference) - tp), "fp": int(len(extra)),
                          "se": 100 * tp / len(reference) if len(reference) else float("nan"),
                          "ppv": 100 * tp / (tp + len(extra)) if tp + len(extra) else float("nan")},
            "confusion": confusion.tolist(), "missed_per_class": (n_reference - confusion.sum(1)).tolist(),
            "extra_per_class": np.bincount(extra, minlength=k).tolist(), "accuracy": scores["accuracy"],
            "per_class": scores["per_class"],
            "ece": expected_calibration_error(comparison["probs"], true) if tp else float("nan"),
            "n_called_s": 100 * confusion[class_names.index("N"), class_names.index("S")] / n_matched if n_matched else float("nan"),
            "n_called_v": 100 * confusion[class_names.index("N"), class_names.index("V")] / n_matched if n_matched else float("nan")}


def average(per_record: list[dict]) -> dict:
    """EC57's average statistics: each record's Se, +P and accuracy averaged over the records where it is defined."""
    def mean(values):
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")
    return {"accuracy": mean([r["accuracy"] for r in per_record]),
            "detection": {m: mean([r["detection"][m] for r in per_record]) for m in ("se", "ppv")},
            "per_class": {c: {m: mean([r["per_class"][c][m] for r in per_record]) for m in ("se", "ppv")} for c in SCORED}}


def score(comparisons: dict[str, dict], class_names: list[str]) -> dict:
    """Per record, gross (pooled) and average statistics of ``comparisons`` (record name -> ``compare_record``)."""
    if not comparisons:
        raise EcgnetError("no record to score")
    per_record = {name: statistics(c, class_names) for name, c in comparisons.items()}
    pooled = {key: np.concatenate([c[key] for c in comparisons.values()]).astype(np.int64) for key in ("true", "called", "extra", "reference")}
    pooled["probs"] = np.concatenate([c["probs"] for c in comparisons.values()])
    return {"class_names": list(class_names), "match_window_s": MATCH_WINDOW_S, "records": per_record,
            "gross": statistics(pooled, class_names), "average": average(list(per_record.values()))}


def score_rows(result: dict) -> list[dict]:
    """One flat row per record and one for the gross statistics, for a CSV."""
    def row(name: str, s: dict) -> dict:
        out = {"record": name, "reference_beats": s["reference_beats"], "detected_beats": s["detected_beats"],
               "detection_se": s["detection"]["se"], "detection_ppv": s["detection"]["ppv"], "accuracy": s["accuracy"]}
        for c in SCORED:
            out |= {f"{c}_se": s["per_class"][c]["se"], f"{c}_ppv": s["per_class"][c]["ppv"], f"{c}_fpr": s["per_class"][c]["fpr"]}
        return out | {"n_called_s": s["n_called_s"], "n_called_v": s["n_called_v"], "ece": s["ece"]}
    return [row(name, s) for name, s in result["records"].items()] + [row("gross", result["gross"])]


def reference_beats(record: Path, extension: str) -> tuple[np.ndarray, np.ndarray, float]:
    """A WFDB record's reference beats (samples, AAMI class indices) from its ``extension`` annotation file, and its rate."""
    import wfdb

    from ..signals.records import read_beat_annotations

    base = record.with_suffix("") if record.suffix == ".hea" else record
    if not base.with_suffix(".hea").is_file():
        raise EcgnetError(f"{record}: scoring needs a WFDB record (NAME.hea, NAME.dat) with reference annotations; no {base.name}.hea")
    if not Path(f"{base}.{extension}").is_file():
        raise EcgnetError(f"{base}: no reference annotation file {base.name}.{extension}; name its extension with --ann "
                          "(e.g. --ann atr), or score only annotated records")
    samples, labels = read_beat_annotations(base, extension)
    return samples, labels, float(wfdb.rdheader(str(base)).fs)


def compare_labelled(record: Path, beats_csv: Path, extension: str) -> tuple[dict, list[str]]:
    """``compare_record`` of a record's reference annotations with the beats.csv ecgnet wrote for it."""
    from ..signals.records import AAMI_GROUPS

    reference, labels, fs = reference_beats(record, extension)
    samples, probs, names = read_labelled_beats(beats_csv)
    if names != list(AAMI_GROUPS):
        raise EcgnetError(f"{beats_csv}: its classes {', '.join(names)} are not the AAMI beat classes {', '.join(AAMI_GROUPS)}; "
                          "score a 5-class beat model (e.g. mitbih-rr)")
    return compare_record(reference, labels, samples, probs, fs), names
