"""Classification metrics and their text report."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score


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
    return "\n".join(lines)
