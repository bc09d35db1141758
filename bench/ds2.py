"""Scoring on MIT-BIH DS2 for bench/interpatient.py: class probabilities of the annotated and the detected
beats, AAMI scores of detected beats matched to the reference, and the rows of a cross-validated ensemble."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import softmax
from wfdb import processing

from ecgnet.constants import TASKS
from ecgnet.metrics import aami_scores
from ecgnet.models.fastpath import predict_logits
from ecgnet.serving.inference import Predictor
from ecgnet.signals.context import BeatContext
from ecgnet.signals.fibrillation import gate_premature, irregular_rhythm
from ecgnet.signals.preprocess import cut_detected_beats
from ecgnet.signals.records import DS2, read_beat_annotations, read_wfdb
from ecgnet.signals.rhythm import rhythm_features
from ecgnet.training.evaluation import model_inputs

MITBIH = TASKS["mitbih"]
SCORED = ("N", "S", "V", "F")
# a cross-validated ensemble scored as it is, with out-of-fold offsets, with S calls in irregular rhythm made N
# (ecgnet.signals.fibrillation, as predict --record does), gated with offsets fitted on the gated out-of-fold predictions,
# and pooled with the linear rhythm model fitted on the same training beats (ecgnet.models.combined), without and with the gate
CV_ROWS = ("", "+offsets", "+gate", "+gate+offsets", "+linear", "+linear+gate")


def detected_ds2(mitdb: Path, detector: str, cache: Path, before_r_s: float) -> dict:
    """Per DS2 record: detected beats cut by the recipe, their rhythm and positions, and the reference annotations."""
    path = cache / (f"detected_{detector}.npz" if not before_r_s else f"detected_{detector}_before{before_r_s}.npz")
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {name: {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(name + "/")} for name in DS2}
    out = {}
    for name in DS2:
        rec = read_wfdb(mitdb / name, channel=0)  # as prepare reads mitdb
        cut, found = cut_detected_beats(rec.signal, rec.fs, detector, before_r_s)
        ref, labels = read_beat_annotations(mitdb / name)
        out[name] = {"beats": cut.beats, "rhythm": rhythm_features(found, rec.fs)[cut.index], "positions": found[cut.index],
                     "reference": ref, "labels": labels, "fs": np.array(rec.fs)}
    np.savez(path, **{f"{name}/{k}": v for name, d in out.items() for k, v in d.items()})
    return out


def detected_proba(predictor: Predictor, detected: dict) -> dict:
    """Class probabilities of each DS2 record's detected beats as the model answers (no irregular-rhythm rule: the
    rows that apply it, "+gate", do so themselves)."""
    return {name: predictor.predict_proba(BeatContext.of_beats(d["beats"], d["rhythm"], irregular=np.zeros(len(d["beats"]), bool)))
            for name, d in detected.items()}


def score_detected(proba: dict, detected: dict) -> dict:
    """AAMI scores of the detected DS2 beats, given their class probabilities per record (``detected_proba``)."""
    true, pred, unmatched, n_ref = [], [], [], np.zeros(MITBIH.n_classes, int)
    for name, d in detected.items():
        labels = proba[name].argmax(1)
        match = processing.compare_annotations(d["reference"], d["positions"], int(round(0.15 * float(d["fs"])))).matching_sample_nums
        hit = match >= 0
        true.append(d["labels"][hit])
        pred.append(labels[match[hit]])
        unmatched.append(np.delete(labels, match[hit]))
        n_ref += np.bincount(d["labels"], minlength=MITBIH.n_classes)
    return aami_scores(np.concatenate(true), np.concatenate(pred), MITBIH.class_names, SCORED, n_ref, np.concatenate(unmatched))


def average(member_probs: list[np.ndarray], offsets: np.ndarray) -> np.ndarray:
    """The members' mean class probabilities, each member's log-probabilities shifted by ``offsets`` first."""
    return np.mean([softmax(np.log(np.maximum(p, 1e-12)) + offsets, axis=1) for p in member_probs], axis=0)


def dataset_proba(predictor: Predictor, data) -> np.ndarray:
    """Calibrated class probabilities of a prepared dataset's beats (rhythm inputs already computed)."""
    data = model_inputs(predictor.model, data, "DS2")
    logits = predict_logits(predictor.model, data.x, rhythm=data.rhythm)
    return (logits / predictor.temperature).softmax(1).numpy()


def cv_probabilities(ensemble: Predictor, members: list[Predictor], pooled: Predictor, test, detected: dict,
                     irregular: np.ndarray, offsets: np.ndarray, gate_offsets: np.ndarray) -> tuple[dict, dict]:
    """Per ``CV_ROWS`` entry, DS2 class probabilities: of the annotated beats, and of each record's detected beats.
    Offsets were fitted on single models' outputs, so each member is shifted, then averaged; "+gate" makes S calls
    in irregular rhythm N (``irregular``: of the annotated beats), after ``gate_offsets`` in "+gate+offsets";
    "+linear" is the ensemble ``pooled`` with the linear model."""
    test_probs = [dataset_proba(m, test) for m in members]
    detected_probs = [detected_proba(m, detected) for m in members]

    def shifted(shift: np.ndarray) -> tuple[np.ndarray, dict]:
        return average(test_probs, shift), {record: average([p[record] for p in detected_probs], shift) for record in detected}

    plain = dataset_proba(ensemble, test), detected_proba(ensemble, detected)
    linear = dataset_proba(pooled, test), detected_proba(pooled, detected)
    rows = {"": plain, "+offsets": shifted(offsets), "+gate": plain, "+gate+offsets": shifted(gate_offsets), "+linear": linear,
            "+linear+gate": linear}
    annotated = {k: gate_premature(a, irregular, MITBIH.class_names) if "+gate" in k else a for k, (a, _) in rows.items()}
    found = {k: gate_detected(f, detected) if "+gate" in k else f for k, (_, f) in rows.items()}
    return annotated, found


def gate_detected(proba: dict, detected: dict) -> dict:
    """Per DS2 record, the detected beats' probabilities with S calls in irregular rhythm made N (``ecgnet.signals.fibrillation``)."""
    return {record: gate_premature(p, irregular_rhythm(detected[record]["rhythm"][:, 0]), MITBIH.class_names)
            for record, p in proba.items()}
