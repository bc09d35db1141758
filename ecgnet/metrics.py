"""Classification metrics and their text report."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

ECE_BINS = 15
COVERAGE_THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...], probs: np.ndarray | None = None) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix (and ROC AUC for 2 classes)."""
    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    metrics = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "class_names": list(class_names),
        "confusion_matrix": cm.tolist(),
    }
    if len(class_names) == 2 and probs is not None and len(np.unique(y_true)) == 2:
        metrics["roc_auc"] = float(roc_auc_score(y_true, probs[:, 1]))
    return metrics


def format_report(metrics: dict) -> str:
    """Confusion matrix (counts and row-normalised) and the per-class table, as text."""
    names = metrics["class_names"]
    cm = np.asarray(metrics["confusion_matrix"])
    width = max(8, max(len(n) for n in names) + 2)
    header = "true \\ pred".ljust(12) + "".join(n.rjust(width) for n in names)
    lines = ["Confusion matrix (counts)", header]
    lines += [names[i].ljust(12) + "".join(str(v).rjust(width) for v in row) for i, row in enumerate(cm)]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    lines += ["", "Confusion matrix (row-normalised: recall on the diagonal)", header]
    lines += [names[i].ljust(12) + "".join(f"{v:.3f}".rjust(width) for v in row) for i, row in enumerate(norm)]
    lines += ["", f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name in names:
        c = metrics["per_class"][name]
        lines.append(f"{name:<12}{c['precision']:>10.4f}{c['recall']:>10.4f}{c['f1']:>10.4f}{c['support']:>10d}")
    lines += ["", f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   beats {metrics['n']}"]
    if "roc_auc" in metrics:
        lines[-1] += f"   ROC AUC {metrics['roc_auc']:.4f}"
    if "calibration" in metrics:
        lines += ["", format_calibration(metrics["calibration"])]
    return "\n".join(lines)


def format_calibration(c: dict) -> str:
    """ECE before and after temperature scaling, and accuracy of the beats kept at each confidence threshold."""
    lines = [f"calibration: temperature {c['temperature']:.3f}, ECE ({c['bins']} bins) {c['ece_uncalibrated']:.4f} uncalibrated "
             f"-> {c['ece']:.4f} calibrated",
             f"{'min confidence':<16}{'kept':>8}{'accuracy':>10}"]
    for row in c["coverage"]:
        lines.append(f"{row['threshold']:<16g}{100 * row['coverage']:>7.1f}%{100 * row['accuracy']:>9.2f}%")
    return "\n".join(lines)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[int, ...]) -> float:
    """Mean F1 over ``classes`` (beats of other true classes are left out, as AAMI EC57 leaves out Q)."""
    keep = np.isin(y_true, classes)
    t, p = y_true[keep], y_pred[keep]
    f1 = []
    for c in classes:
        tp = ((t == c) & (p == c)).sum()
        f1.append(2 * tp / max((t == c).sum() + (p == c).sum(), 1))
    return float(np.mean(f1))


def aami_scores(y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...], scored: tuple[str, ...] = ("N", "S", "V", "F"),
                n_reference: np.ndarray | None = None, unmatched_pred: np.ndarray | None = None) -> dict:
    """AAMI EC57-style scores: per class Se, +P and false-positive rate (in %), accuracy and macro-F1 over ``scored``.

    Beats whose true class is not in ``scored`` (Q) are left out; predictions of any class
    count. For detected beats, ``n_reference`` (per class) counts reference beats that were
    never classified (missed by the detector) against Se and accuracy, and
    ``unmatched_pred`` (classes given to detections matching no reference beat) adds false positives.
    """
    keep = np.isin(y_true, [class_names.index(c) for c in scored])
    t, p = y_true[keep], y_pred[keep]
    out = {"n": int(keep.sum()), "per_class": {}}
    f1s = []
    for name in scored:
        k = class_names.index(name)
        tp, fp = int(((t == k) & (p == k)).sum()), int(((t != k) & (p == k)).sum())
        if unmatched_pred is not None:
            fp += int((unmatched_pred == k).sum())
        ref = int(n_reference[k]) if n_reference is not None else int((t == k).sum())
        negatives = int((t != k).sum())
        se = 100 * tp / ref if ref else float("nan")
        ppv = 100 * tp / (tp + fp) if tp + fp else float("nan")
        f1s.append(0.0 if not tp else 2 * se * ppv / (se + ppv) / 100)
        out["per_class"][name] = {"se": se, "ppv": ppv, "fpr": 100 * fp / negatives if negatives else float("nan"), "tp": tp,
                                  "fp": fp, "reference": ref}
    total = int(n_reference[[class_names.index(c) for c in scored]].sum()) if n_reference is not None else len(t)
    out["accuracy"] = 100 * float((t == p).sum()) / total if total else float("nan")
    out["macro_f1"] = float(np.mean(f1s))
    return out


def youden_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The probability threshold that maximises sensitivity + specificity (Youden's J) on (``p``, ``y``)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y, p)
    return float(min(thresholds[np.argmax(tpr - fpr)], 1.0))


def detection_metrics(p: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """ROC AUC, and sensitivity, specificity and PPV when ``p >= threshold`` is called positive."""
    y, called = np.asarray(y).astype(bool), np.asarray(p) >= threshold
    tp, fn = int((called & y).sum()), int((~called & y).sum())
    tn, fp = int((~called & ~y).sum()), int((called & ~y).sum())
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return {"n": int(len(y)), "positives": int(y.sum()), "roc_auc": auc, "threshold": float(threshold),
            "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp, 1), "ppv": tp / max(tp + fp, 1),
            "tp": tp, "fn": fn, "tn": tn, "fp": fp}


def per_group(p: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels per group (e.g. patient): the mean score of its items, positive if any item is."""
    _, inverse = np.unique(groups, return_inverse=True)
    return (np.bincount(inverse, weights=p) / np.bincount(inverse),
            np.bincount(inverse, weights=np.asarray(y, float)) > 0)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Per equal-width confidence bin: beats, mean confidence and accuracy of the top class."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, bins) / count
        acc = np.bincount(which, correct.astype(float), bins) / count
    return {"count": count.tolist(), "confidence": np.nan_to_num(conf).tolist(), "accuracy": np.nan_to_num(acc).tolist()}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the beat-weighted mean gap between confidence and accuracy over ``bins`` equal-width bins."""
    b = reliability_bins(probs, labels, bins)
    count = np.asarray(b["count"])
    gap = np.abs(np.asarray(b["confidence"]) - np.asarray(b["accuracy"]))
    return float((count * gap).sum() / max(count.sum(), 1))


def coverage_table(probs: np.ndarray, labels: np.ndarray, thresholds: tuple[float, ...] = COVERAGE_THRESHOLDS) -> list[dict]:
    """For each confidence threshold P: the share of beats kept (top probability >= P) and their accuracy."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    rows = []
    for p in thresholds:
        kept = confidence >= p
        rows.append({"threshold": p, "coverage": float(kept.mean()) if len(kept) else 0.0,
                     "accuracy": float(correct[kept].mean()) if kept.any() else float("nan"), "kept": int(kept.sum())})
    return rows
