"""Temperature scaling, ECE, coverage, and the 'uncertain' verdict below --min-confidence."""
import json

import numpy as np
import pytest
import torch
from helpers import FIXTURES, SAMPLES, ecgnet
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ecgnet.constants import UNCERTAIN
from ecgnet.metrics import coverage_table, expected_calibration_error, reliability_bins
from ecgnet.serving.inference import Predictor
from ecgnet.serving.labelling import verdicts
from ecgnet.training.calibration import fit_temperature


def test_fit_temperature_recovers_a_known_overconfidence():
    g = torch.Generator().manual_seed(0)
    true_logits = 2 * torch.randn(6000, 5, generator=g)
    labels = torch.multinomial(true_logits.softmax(1), 1, generator=g).squeeze(1)
    assert fit_temperature(2.5 * true_logits, labels) == pytest.approx(2.5, rel=0.08)
    assert fit_temperature(0.5 * true_logits, labels) == pytest.approx(0.5, rel=0.08)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 20), st.integers(2, 6)), elements=st.floats(-60, 60, width=32)),
       st.floats(0.05, 20))
def test_temperature_never_changes_the_predicted_class(logits, temperature):
    t = torch.from_numpy(logits)
    keep = (t.topk(min(2, t.shape[1]), 1).values.diff(dim=1).abs() > 1e-3).all(1)  # exact ties have no defined order
    assert torch.equal(t[keep].argmax(1), (t[keep] / temperature).softmax(1).argmax(1))


def test_calibrated_predictor_keeps_every_class(quick_run):
    from ecgnet.data.beatfiles import read_beats_file
    beats, _ = read_beats_file(SAMPLES / "mitbih_beats.csv")
    predictor = Predictor.from_checkpoint(quick_run / "best.pt", "cpu")
    assert predictor.temperature != 1.0
    calibrated = predictor.predict_proba(beats)
    raw = predictor.logits(beats).softmax(1).numpy()
    assert (calibrated.argmax(1) == raw.argmax(1)).all() and not np.allclose(calibrated, raw)


def test_ece_and_coverage_on_known_cases():
    probs = np.array([[0.9, 0.1]] * 10)
    labels = np.array([0] * 9 + [1])                           # 90% confident, 90% right: calibrated
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error(probs, np.zeros(10, int)) == pytest.approx(0.1)
    bins = reliability_bins(probs, labels)
    assert sum(bins["count"]) == 10 and bins["count"][13] == 10  # 0.9 falls in bin (0.867, 0.933]
    rows = coverage_table(np.array([[0.6, 0.4], [0.95, 0.05], [0.3, 0.7]]), np.array([1, 0, 1]), (0.5, 0.9, 0.99))
    assert [r["kept"] for r in rows] == [3, 1, 0]
    assert rows[0]["accuracy"] == pytest.approx(2 / 3) and rows[1]["accuracy"] == 1.0 and np.isnan(rows[2]["accuracy"])


def test_verdicts_mark_low_confidence_beats_uncertain():
    probs = np.array([[0.5, 0.3, 0.2], [0.05, 0.95, 0.0]])
    top, names = verdicts(probs, ["N", "S", "V"], 0.9)
    assert top.tolist() == [-1, 1] and names.tolist() == [UNCERTAIN, "S"]
    assert verdicts(probs, ["N", "S", "V"])[1].tolist() == ["N", "S"]


def test_test_command_reports_calibration_and_coverage(quick_run, tmp_path, capsys):
    assert ecgnet("test", "--checkpoint", quick_run / "best.pt", "--out", tmp_path) == 0
    out = capsys.readouterr().out
    assert "calibration: temperature" in out and "uncalibrated ->" in out and "min confidence" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    c = metrics["calibration"]
    assert c["bins"] == 15 and [r["threshold"] for r in c["coverage"]] == [0.5, 0.8, 0.9, 0.95, 0.99]
    assert c["ece"] <= c["ece_uncalibrated"] + 0.02
    for name in ("reliability.png", "coverage.png", "confusion_matrix.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_min_confidence_on_beat_files_and_records(quick_run, tmp_path, capsys):
    assert ecgnet("predict", "--checkpoint", quick_run / "best.pt", "--min-confidence", "0.9", SAMPLES / "mitbih_beats.csv", "--json") == 0
    rows = json.loads(capsys.readouterr().out)["beats"]
    unsure = [r for r in rows if r["name"] == UNCERTAIN]
    assert unsure and all(r["class"] == -1 and r["probability"] < 0.9 for r in unsure)
    assert all(r["probability"] >= 0.9 for r in rows if r["name"] != UNCERTAIN)
    args = ("--checkpoint", quick_run / "best.pt", "--record", FIXTURES / "mitdb" / "208", "--out", tmp_path, "--min-confidence", "0.8")
    assert ecgnet("predict", *args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    lines = (tmp_path / "beats.csv").read_text().splitlines()
    assert summary["min_confidence"] == 0.8 and summary["per_class"][UNCERTAIN] == sum(",uncertain," in r for r in lines)
    assert sum(summary["per_class"].values()) == summary["classified"] == len(lines) - 1


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "nan"])
def test_min_confidence_outside_0_1_is_one_line_exit_2(quick_run, capsys, value):
    code = ecgnet("predict", "--checkpoint", quick_run / "best.pt", "--min-confidence", value, SAMPLES / "mitbih_beats.csv")
    err = capsys.readouterr().err
    assert code == 2 and "--min-confidence must lie strictly between 0 and 1" in err and err.count("\n") == 1
