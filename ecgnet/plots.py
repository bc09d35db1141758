"""Figures: the confusion matrix and a labelled ECG strip.

Built on ``matplotlib.figure.Figure`` (no pyplot): no GUI backend is selected and no
process-wide plotting state changes, so the library draws the same in a script, a
server or a notebook.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

CLASS_COLOURS = {"N": "tab:green", "S": "tab:orange", "V": "tab:red", "F": "tab:purple", "Q": "tab:gray",
                 "normal": "tab:green", "MI": "tab:red"}


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


def strip_figure(signal: np.ndarray, fs: float, samples: np.ndarray, names: np.ndarray, probabilities: np.ndarray,
                 lo: int, hi: int, lead: str, title: str) -> Figure:
    """An ECG strip ``signal[lo:hi]`` with each beat at ``samples`` marked by its class and probability."""
    t = np.arange(lo, hi) / fs
    seconds = (hi - lo) / fs
    fig = Figure(figsize=(max(8, seconds * 0.9), 3.2))
    ax = fig.subplots()
    ax.plot(t, signal[lo:hi], lw=0.8, color="black")
    inside = (samples >= lo) & (samples < hi)
    top = signal[lo:hi].max()
    for s, name, p in zip(samples[inside], names[inside], probabilities[inside]):
        c = CLASS_COLOURS.get(name, "tab:blue")
        ax.axvline(s / fs, color=c, alpha=0.35, lw=1)
        ax.text(s / fs, top, f"{name}\n{p:.2f}", color=c, ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(lead)
    ax.set_title(title, fontsize=9)
    ax.margins(x=0, y=0.25)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: str | Path, dpi: int = 120) -> None:
    fig.savefig(path, dpi=dpi)
