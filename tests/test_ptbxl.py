"""Record-level MI on PTB-XL: prepare's labels and folds, the record model's round trip, predict's verdicts, bad inputs.

Real PTB-XL records (tests/fixtures/ptbxl, from tools/make_fixtures.py): an MI and a NORM record of folds 1, 7, 8, 9,
two more MI records, one of another diagnosis; and three bad inputs cut from a real record.
"""
import csv
import json

import numpy as np
import pytest
import torch
from helpers import FIXTURES, ecgnet

from ecgnet.constants import MI_CLASSES, STANDARD_LEADS
from ecgnet.data.ptbxl import FOLDS, label_of, load_ptbxl, read_statements
from ecgnet.models.pretrained import load_model_file, write_model_file
from ecgnet.models.record import record_probabilities
from ecgnet.serving.batch import load_classifier
from ecgnet.signals.leads import lead_beats, lead_slot, read_leads
from ecgnet.training.record_training import RecordTrainingConfig, train_record_model

SRC = FIXTURES / "ptbxl"
CLASSES = {"NORM": "NORM", "MI": "MI", "IMI": "MI", "ASMI": "MI", "NST_": "STTC", "LVH": "HYP", "SR": ""}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("ptbxl")
    assert ecgnet("prepare", "ptbxl", "--src", SRC, "--out", out) == 0
    return out


@pytest.fixture(scope="module")
def record_model(prepared, tmp_path_factory):
    """A frozen-trunk record model trained two epochs on the fixture records, as a model file."""
    torch.set_num_threads(1)
    ckpt = train_record_model(RecordTrainingConfig(data_dir=str(prepared), mode="frozen", epochs=2, seed=0))
    return write_model_file(ckpt, tmp_path_factory.mktemp("model") / "tiny-mi")


@pytest.mark.parametrize("codes, label, location", [
    ({"NORM": 100.0, "SR": 0.0}, 0, ""),
    ({"NORM": 100.0, "NST_": 0.0}, 0, ""),           # a statement of likelihood 0 is not asserted
    ({"IMI": 50.0, "NORM": 0.0}, 1, "inferior"),
    ({"ASMI": 15.0, "IMI": 100.0}, 1, "inferior+anterior"),
    ({"IMI": 0.0, "LVH": 100.0}, -1, ""),            # MI unsure (0) and another class: left out
    ({"NORM": 80.0, "LVH": 50.0}, -1, ""),           # NORM is not the only diagnostic class
])
def test_labels_follow_the_statements(codes, label, location):
    assert label_of(codes, CLASSES) == (label, location)


def test_prepare_writes_beats_of_every_lead_by_fold_and_patient(prepared):
    statements = {s.ecg_id: s for s in read_statements(SRC)}
    recipe = json.loads((prepared / "ptbxl_recipe.json").read_text())
    kept = [s for s in statements.values() if s.label >= 0]
    assert recipe["counts"]["kept"] == len(kept) and recipe["counts"]["left_out_other_diagnoses"] == 1
    with open(prepared / "ptbxl_index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert {r["lead"] for r in index} == set(STANDARD_LEADS)
    for r in index:
        s = statements[int(r["ecg_id"])]
        assert (int(r["label"]), int(r["strat_fold"]), int(r["patient_id"])) == (s.label, s.fold, s.patient_id)
    data = load_ptbxl(prepared)
    assert data.present.all() and (data.beat_mask.sum(1) >= 5).all()  # 10 s of real heartbeats in every record
    assert data.beats.max() <= 1 and data.beats.min() >= 0
    sides = {name: set(data.split(name).patients) for name in FOLDS}
    assert not (sides["train"] & sides["val"]) and not (sides["train"] & sides["test"]) and not (sides["val"] & sides["test"])
    assert set(data.split("val").folds) == {8} and set(data.split("test").folds) == {9}


def test_lead_ii_only_prepare_matches_the_twelve_lead_one(prepared, tmp_path):
    assert ecgnet("prepare", "ptbxl", "--src", SRC, "--out", tmp_path, "--leads", "ii") == 0
    ii, all_leads = load_ptbxl(tmp_path), load_ptbxl(prepared)
    slot = STANDARD_LEADS.index("II")
    assert ii.present.sum() == len(ii.labels) and ii.present[:, slot].all()
    assert np.array_equal(ii.beats[:, :, slot], all_leads.beats[:, :, slot])


def test_beats_of_all_leads_share_their_r_peaks():
    base = SRC / next(s.path for s in read_statements(SRC) if s.label == 1)
    cut = lead_beats(read_leads(base))
    assert cut.beats.shape[1:] == (12, 187) and cut.present.all()
    assert lead_slot("MLII") == lead_slot("ii") == 1 and lead_slot("AVR") == 3 and lead_slot("ECG V5") == 10
    assert lead_slot("pleth") is None


def test_the_record_model_round_trips_through_a_model_file(record_model, prepared):
    ckpt = load_model_file(record_model)
    assert ckpt["model_name"] == "lead_pool" and set(ckpt["calibration"]["thresholds"]) == {"12 leads", "lead II"}
    data = load_ptbxl(prepared)
    predictor = load_classifier(str(record_model))
    again = record_probabilities(predictor.model, data.beats, data.beat_mask, data.present)
    from ecgnet.models.checkpoint import model_from_checkpoint
    original = record_probabilities(model_from_checkpoint(ckpt), data.beats, data.beat_mask, data.present)
    assert torch.equal(again, original) and again.shape == (len(data.labels), len(MI_CLASSES))


def test_predict_writes_a_verdict_per_recording(record_model, tmp_path, capsys):
    records = [SRC / s.path for s in read_statements(SRC) if s.label >= 0][:3]
    assert ecgnet("predict", "--checkpoint", record_model, "--record", records[0], "--out", tmp_path / "one") == 0
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["record_class"] in MI_CLASSES and 0 <= summary["p_MI"] <= 1 and summary["leads"] == "12 leads"
    assert (summary["p_MI"] >= summary["threshold"]) == (summary["record_class"] == "MI")
    assert ecgnet("predict", "--checkpoint", record_model, "--record", *map(str, records), "--out", tmp_path / "many", "--workers", "1") == 0
    with open(tmp_path / "many" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {"record_class", "p_MI"} <= set(rows[0]) and all(r["status"] == "ok" for r in rows)
    assert rows[0]["record_class"] == summary["record_class"] and float(rows[0]["p_MI"]) == pytest.approx(summary["p_MI"], abs=1e-4)


def test_a_three_lead_record_with_lead_ii_is_judged_on_lead_ii(record_model, tmp_path):
    assert ecgnet("predict", "--checkpoint", record_model, "--record", SRC / "bad" / "three_leads", "--out", tmp_path) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["leads"] == "lead II" and summary["leads_read"] == ["II"]


@pytest.mark.parametrize("record, message", [
    ("no_lead_ii", "no lead II"),
    ("two_seconds", "shorter than one 10 s window"),
])
def test_records_it_cannot_judge_are_one_line_exit_2(record_model, tmp_path, capsys, record, message):
    assert ecgnet("predict", "--checkpoint", record_model, "--record", SRC / "bad" / record, "--out", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_single_lead_signal_file_is_refused_with_one_line(record_model, tmp_path, capsys):
    signal = tmp_path / "x.npy"
    np.save(signal, np.zeros(2000))
    assert ecgnet("predict", "--checkpoint", record_model, "--record", signal, "--fs", "100", "--out", tmp_path / "o") == 2
    assert "WFDB records" in capsys.readouterr().err


def test_prepare_refuses_a_folder_without_ptbxl(tmp_path, capsys):
    assert ecgnet("prepare", "ptbxl", "--src", tmp_path, "--out", tmp_path / "o") == 2
    assert "scp_statements.csv" in capsys.readouterr().err


def test_ecgnet_test_scores_a_record_model_on_the_test_fold(record_model, prepared, tmp_path, capsys):
    assert ecgnet("test", "--checkpoint", record_model, "--data-dir", prepared, "--out", tmp_path) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    data = load_ptbxl(prepared).split("test")
    assert metrics["n"] == len(data.labels) and set(metrics["figures"]) == {"12 leads", "lead II"}
    record = metrics["figures"]["12 leads"]["record"]
    assert record["tp"] + record["fn"] == int(data.labels.sum()) and record["tn"] + record["fp"] == int((data.labels == 0).sum())
    assert "12 leads  record" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["export", "--onnx", "{tmp}/m.onnx"], "ONNX export covers beat models"),
    (["predict", "samples/mitbih_beats.csv"], "not beat files"),
])
def test_record_models_refuse_beat_model_jobs_with_one_line(record_model, tmp_path, capsys, args, message):
    from helpers import ROOT
    args = [a.replace("{tmp}", str(tmp_path)).replace("samples/", str(ROOT / "samples") + "/") for a in args]
    assert ecgnet(args[0], "--checkpoint", record_model, *args[1:]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
