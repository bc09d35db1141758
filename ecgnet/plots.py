"""Figures: the confusion matrix, reliability and coverage of calibrated confidence.

Built on ``matplotlib.figure.Figure`` (no pyplot): no GUI backend is selected and no
process-wide plotting state changes, so the library draws the same in a script, a
server or a notebook.
"""
from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
from matplotlib.figure import Figure


def confusion_figure(metrics: dict, title: str = "") -> Figure:
    """Row-normalised confusion matrix with counts in each cell."""
    names = metrics["class_names"]
    cm = np.asarray(metrics["confusion_matrix"])
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.2 * len(names) + 2.5, 1.1 * len(names) + 2))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({cm[i, j]})", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def reliability_figure(calibration: dict, title: str = "") -> Figure:
    """Reliability diagram: accuracy against confidence per bin, before and after temperature scaling."""
    fig = Figure(figsize=(5.2, 4.6))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="perfect calibration")
    for key, label, colour in (("reliability_uncalibrated", f"uncalibrated (ECE {calibration['ece_uncalibrated']:.4f})", "tab:red"),
                               ("reliability", f"T = {calibration['temperature']:.2f} (ECE {calibration['ece']:.4f})", "tab:blue")):
        b = calibration[key]
        used = np.asarray(b["count"]) > 0
        ax.plot(np.asarray(b["confidence"])[used], np.asarray(b["accuracy"])[used], "o-", ms=4, color=colour, label=label)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"reliability, {calibration['bins']} bins", fontsize=9)
    fig.tight_layout()
    return fig


def coverage_figure(calibration: dict, title: str = "") -> Figure:
    """Share of beats kept and their accuracy as the minimum confidence rises."""
    rows = calibration["coverage_curve"]
    p = [r["threshold"] for r in rows]
    fig = Figure(figsize=(5.2, 4.0))
    ax = fig.subplots()
    ax.plot(p, [100 * r["coverage"] for r in rows], color="tab:blue", label="beats kept (%)")
    ax.plot(p, [100 * r["accuracy"] for r in rows], color="tab:green", label="accuracy of kept beats (%)")
    ax.set_xlabel("--min-confidence P")
    ax.set_ylabel("%")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title or "coverage and accuracy against minimum confidence", fontsize=9)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: str | Path | IO[bytes], dpi: int = 120) -> None:
    """Write ``fig`` as PNG to a path or an open binary file."""
    fig.savefig(path, dpi=dpi, format="png")


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str = "") -> Figure:
    """ROC curves: label -> (scores, true labels 0/1, the operating threshold, marked on its curve)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for label, (p, y, threshold) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        line, = ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, p):.3f})")
        called = p >= threshold
        ax.plot([called[y == 0].mean()], [called[y == 1].mean()], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
