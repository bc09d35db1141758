"""Interactive figures of the web page (plotly): the labelled strip and one beat with its attribution."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..constants import CLASS_COLOURS, SAMPLE_RATE, UNCERTAIN

STRIP_SECONDS = 15.0
MAX_POINTS = 300_000  # signal points drawn: a 30-min record at 360 Hz is drawn at 120 Hz, enough to see each QRS


def window_around(times: np.ndarray, selected: int, seconds: float) -> tuple[float, float]:
    """The strip's initial x-range: STRIP_SECONDS around the selected beat, else the first STRIP_SECONDS."""
    centre = float(times[selected]) if selected >= 0 else STRIP_SECONDS / 2
    lo = min(max(0.0, centre - STRIP_SECONDS / 2), max(0.0, seconds - STRIP_SECONDS))
    return lo, lo + STRIP_SECONDS


def strip_figure(result: dict, lo: float, hi: float, selected: int) -> go.Figure:
    """The whole signal (zoom and pan) with every beat marked by its class letter; click a letter to inspect it."""
    signal, fs, table = result["signal"], result["fs"], result["table"]
    step = max(1, int(np.ceil(len(signal) / MAX_POINTS)))
    fig = go.Figure(go.Scattergl(x=np.arange(0, len(signal), step) / fs, y=signal[::step], mode="lines",
                                 line={"color": "black", "width": 1}, hoverinfo="skip", name="ECG"))
    names, samples = np.asarray(table["name"]), np.asarray(table["sample"])
    for name in dict.fromkeys(names):
        idx = np.flatnonzero(names == name)
        fig.add_trace(go.Scatter(x=table["time_s"][idx], y=signal[samples[idx]], mode="markers+text", text=[name] * len(idx),
                                 textposition="top center", customdata=idx, name=name,
                                 marker={"color": CLASS_COLOURS.get(name, CLASS_COLOURS[UNCERTAIN]), "size": 7},
                                 hovertemplate="beat %{customdata}: " + name + "<extra></extra>"))
    if selected >= 0:
        fig.add_vline(x=float(table["time_s"][selected]), line={"color": "orange", "width": 2})
    fig.update_layout(height=330, margin={"l": 40, "r": 10, "t": 10, "b": 30}, xaxis={"range": [lo, hi], "title": "time (s)"},
                      yaxis={"title": result["lead"]}, dragmode="pan", clickmode="event+select", legend={"orientation": "h"})
    return fig


def beat_figure(beat: np.ndarray, weights: np.ndarray) -> go.Figure:
    """The 187 samples the model saw, over bars of each sample's attribution (red: for the label, blue: against)."""
    t = 1000 * np.arange(len(beat)) / SAMPLE_RATE
    scale = np.abs(weights).max() or 1.0
    fig = go.Figure(go.Bar(x=t, y=weights / scale, marker={"color": np.where(weights >= 0, "crimson", "royalblue")},
                           opacity=0.45, name="attribution", yaxis="y2"))
    fig.add_trace(go.Scatter(x=t, y=beat, mode="lines", line={"color": "black"}, name="beat (scaled to [0, 1])"))
    fig.update_layout(height=280, margin={"l": 40, "r": 40, "t": 10, "b": 30}, xaxis={"title": "ms from the cut's start"},
                      yaxis={"range": [-0.05, 1.05]}, yaxis2={"overlaying": "y", "side": "right", "range": [-1.05, 1.05],
                                                          "showgrid": False}, legend={"orientation": "h"}, bargap=0)
    return fig


def probability_figure(probs: dict[str, float]) -> go.Figure:
    """The beat's class probabilities as bars, in the model's class order."""
    names = list(probs)
    fig = go.Figure(go.Bar(x=names, y=[probs[n] for n in names], text=[f"{probs[n]:.2f}" for n in names], textposition="outside",
                           marker={"color": [CLASS_COLOURS.get(n, CLASS_COLOURS[UNCERTAIN]) for n in names]}))
    fig.update_layout(height=280, margin={"l": 40, "r": 10, "t": 10, "b": 30}, yaxis={"range": [0, 1.15], "title": "probability"})
    return fig
