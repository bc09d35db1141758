"""The ecgnet web page (Streamlit): label a recording or a beat file and look at the result.

Started by ``ecgnet app``. Presentation only: reading, labelling, metrics and attribution
are the library's (``ecgnet.webapp.session`` holds the glue between uploads and the library).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from ecgnet.constants import DEFAULT_DETECTOR, DETECTORS, ECTOPIC, UNCERTAIN
from ecgnet.errors import EcgnetError
from ecgnet.metrics import format_report
from ecgnet.plots import confusion_figure
from ecgnet.webapp import session
from ecgnet.webapp.figures import beat_figure, probability_figure, strip_figure, window_around

st.set_page_config(page_title="ecgnet", layout="wide")
st.title("ecgnet: heartbeat labels you can look at")
st.caption("Research software, not a medical device.")


def sidebar() -> dict:
    bar = st.sidebar
    bar.header("Model and settings")
    choices = [session.AUTO_MODEL] + session.model_choices()
    model = bar.selectbox("Model", choices, help="shipped models, then the runs found in log/")
    upload = bar.file_uploader("…or upload a checkpoint (.pt / .safetensors + .json)", accept_multiple_files=True, key="ckpt")
    detector = bar.selectbox("Beat detector", DETECTORS, index=DETECTORS.index(DEFAULT_DETECTOR))
    lead = bar.text_input("Lead (blank: MLII / II)", "")
    fs = bar.number_input("Sampling rate of a .csv/.npy signal (Hz)", min_value=0.0, value=0.0, step=1.0)
    confidence = bar.slider("Call beats below this confidence 'uncertain' (0: off)", 0.0, 0.99, 0.0, 0.01)
    return {"model": model, "checkpoint_files": session.files_of(upload), "detector": detector, "lead": lead.strip() or None,
            "fs": fs or None, "min_confidence": confidence or None}


def recording_view(result: dict, model) -> None:
    s = result["summary"]
    cols = st.columns(5)
    cols[0].metric("Duration", f"{s['seconds'] / 60:.1f} min")
    cols[1].metric("Beats", s["classified"])
    cols[2].metric("Heart rate", f"{s['mean_heart_rate_bpm']:.0f} bpm")
    cols[3].metric("Ectopic (S+V+F)", f"{100 * s.get('ectopic_share', 0):.1f}%")
    cols[4].metric("Model", s["model"])
    st.write("Beats per class: " + ", ".join(f"**{k}** {v}" for k, v in s["per_class"].items()))
    st.write(f"In irregular rhythm (as in atrial fibrillation; not called S there): {100 * s['irregular_rhythm_share']:.1f}% of beats")
    table = result["table"]
    names = np.asarray(table["name"])
    nav = st.columns([2, 1, 3])
    kind = nav[0].selectbox("Jump to the next beat of class", [c for c in list(ECTOPIC) + [UNCERTAIN] if c in set(names)] or ["N"])
    if nav[1].button("Next", key="next"):
        st.session_state.beat = session.next_beat(names, kind, st.session_state.get("beat", -1))
    selected = st.session_state.get("beat", -1)
    lo, hi = window_around(table["time_s"], selected, result["seconds"])
    event = st.plotly_chart(strip_figure(result, lo, hi, selected), key="strip", on_select="rerun", selection_mode="points",
                            width="stretch")
    clicked = session.clicked_beat(event)
    if clicked is not None and clicked != selected:
        st.session_state.beat = clicked
        st.rerun()
    if selected >= 0:
        beat_panel(result, selected, model)
    st.subheader("Beats")
    show = st.multiselect("Classes", sorted(set(names)), default=sorted(set(names)))
    frame = pd.DataFrame({k: v for k, v in table.items()})
    st.dataframe(frame[frame["name"].isin(show)], height=260, width="stretch")
    down = st.columns(2)
    down[0].download_button("beats.csv", session.beats_csv(result), "beats.csv", "text/csv")
    down[1].download_button("summary.json", session.summary_json(result), "summary.json", "application/json")


def verdict_view(verdict: dict) -> None:
    p_key = next(k for k in verdict if k.startswith("p_"))
    cols = st.columns(5)
    cols[0].metric("Verdict", verdict["record_class"])
    cols[1].metric(p_key, f"{verdict[p_key]:.3f}")
    cols[2].metric("Threshold", f"{verdict['threshold']:.3f}")
    cols[3].metric("Leads", verdict["leads"])
    cols[4].metric("Beats read", verdict["beats_read"])
    st.write(f"Judged from {', '.join(verdict['leads_read'])} ({verdict['seconds']:.1f} s at {verdict['fs']:g} Hz) by {verdict['model']}: "
             f"{verdict['record_class']} when {p_key} ≥ the threshold chosen on held-out patients for {verdict['leads']}.")
    seconds = min(10.0, verdict["seconds"])
    n = int(seconds * verdict["fs"])
    st.line_chart(pd.DataFrame(verdict["signals"][:, :n].T, columns=verdict["names"], index=np.arange(n) / verdict["fs"]))
    clean = {k: v for k, v in verdict.items() if k not in ("signals", "names")}
    st.download_button("summary.json", json.dumps(clean, indent=2) + "\n", "summary.json", "application/json")


def beat_panel(result: dict, i: int, model) -> None:
    table = result["table"]
    probs = {k[2:]: float(table[k][i]) for k in table if k.startswith("p_")}
    st.subheader(f"Beat {i + 1} at {table['time_s'][i]:.2f} s: {table['name'][i]} ({table['probability'][i]:.2f})")
    left, right = st.columns([3, 2])
    weights = session.beat_attribution(result, model, i)
    left.plotly_chart(beat_figure(result["beats"][i], weights), key="beat", width="stretch")
    right.plotly_chart(probability_figure(probs), key="probs", width="stretch")
    right.caption("Shaded: which samples pushed the score of the label up (red) or down (blue): gradient × input.")


def beat_file_view(rows: pd.DataFrame, beats: np.ndarray, metrics: dict | None) -> None:
    st.write(f"{len(rows)} beats")
    st.dataframe(rows, height=300, width="stretch")
    st.line_chart(pd.DataFrame(beats[:12].T, columns=[f"beat {k + 1}" for k in range(min(12, len(beats)))]))
    if metrics is not None:
        st.metric("Accuracy against the file's labels", f"{100 * metrics['accuracy']:.2f}%")
        st.text(format_report(metrics))
        st.pyplot(confusion_figure(metrics))


settings = sidebar()
kind = st.radio("What are you uploading?", ["A recording", "A beat file"], horizontal=True)
files = st.file_uploader("WFDB .hea + .dat, EDF, or a .csv/.npy signal — or beats as .csv / .npy / .mat",
                         accept_multiple_files=True, key="input")
example = st.button("Try the example record (MIT-BIH 208, first minute; for a record-level model a 12-lead PTB-XL ECG)")
if example:
    st.session_state.example, st.session_state.beat = True, -1
try:
    classifier = session.classifier(settings, kind == "A recording")
    if kind == "A recording" and (files or st.session_state.get("example")):
        source = session.files_of(files) if files else session.EXAMPLE
        if getattr(classifier, "record_level", False):
            verdict_view(session.judge(source, classifier, settings))
        else:
            recording_view(session.label(source, classifier, settings), classifier)
    elif kind == "A beat file" and files:
        beat_file_view(*session.classify_beats(session.files_of(files), classifier, settings))
except EcgnetError as e:
    st.error(str(e))
