"""Folds of patients trained into one ensemble model (``ecgnet train --folds K``), on real MIT-BIH excerpts."""
import json
import re

import numpy as np
import pytest
import torch
from helpers import FIXTURES, ecgnet, train_small

from ecgnet.config import Config
from ecgnet.constants import TASKS
from ecgnet.data.datasets import BUNDLED_DIR, load_files, read_index
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import load_checkpoint, save_checkpoint
from ecgnet.models.combined import Combined
from ecgnet.models.fastpath import CPUForward, freeze_for_cpu, uses_cpu_fast_path
from ecgnet.models.pretrained import load_model_file, write_model_file
from ecgnet.models.registry import create_model
from ecgnet.serving.explain import attribution
from ecgnet.serving.inference import Predictor
from ecgnet.training.assemble import combined_checkpoint
from ecgnet.training.crossval import train_folds

MITDB = FIXTURES / "mitdb"
FOLDS = dict(model="kachuee_rr", epochs=1, batch_size=32, num_threads=1, device="cpu", patience=0, imbalance="class_weights")


@pytest.fixture(scope="module")
def folds(interpatient_data, tmp_path_factory):
    cfg = Config(**FOLDS, data_dir=str(interpatient_data), log_dir=str(tmp_path_factory.mktemp("folds")), run_name="cv2").validate()
    return train_folds(cfg, 2)


def test_each_fold_validates_other_patients_and_the_ensemble_averages_them(folds, interpatient_data):
    run_dir = folds["run_dir"]
    ckpt = load_checkpoint(run_dir / "best.pt")
    assert ckpt["model_name"] == "combined" and ckpt["model_args"]["rule"] == "mean" and len(ckpt["model_args"]["members"]) == 2
    val = [set(m["split"]["val_records"]) for m in folds["members"]]
    assert not val[0] & val[1] and val[0] | val[1] == {"201", "208", "209", "223"}
    assert ckpt["split"]["val_records"] == [sorted(v) for v in val]
    data = load_files(interpatient_data, ("mitbih_train",), TASKS["mitbih"])
    beats = data.x.numpy().reshape(len(data), -1)
    _, rhythm = read_index(interpatient_data / "mitbih_train_index.csv", len(data))
    members = [Predictor.from_checkpoint(run_dir / f"fold{f}" / "best.pt", "cpu") for f in range(2)]
    assert members[0].temperature != members[1].temperature            # each member's own calibration is kept
    mean = np.mean([m.predict_proba(beats, rhythm) for m in members], axis=0)
    ensemble = Predictor.from_checkpoint(run_dir / "best.pt", "cpu")
    np.testing.assert_allclose(ensemble.predict_proba(beats, rhythm), mean, atol=1e-5)
    assert ensemble.needs_rhythm and ensemble.temperature == 1.0
    scores = attribution(ensemble, beats[0], rhythm[0])
    assert scores.shape == (187,) and np.isfinite(scores).all() and np.abs(scores).max() > 0


def test_an_ensemble_labels_a_record_and_round_trips_as_a_model_file(folds, tmp_path, capsys):
    best = folds["run_dir"] / "best.pt"
    assert ecgnet("predict", "--checkpoint", best, "--record", MITDB / "201", "--out", tmp_path / "o") == 0, capsys.readouterr().err
    rows = (tmp_path / "o" / "beats.csv").read_text().splitlines()
    assert rows[0].startswith("time_s,sample,class,name,probability,p_N,p_S,p_V,p_F,p_Q,pre_rr") and len(rows) > 40
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert sum(summary["per_class"].values()) == len(rows) - 1
    path = write_model_file(load_checkpoint(best), tmp_path / "ens")
    card = json.loads(path.with_suffix(".json").read_text())
    assert [m["source"] for m in card["members"]] == [str(folds["run_dir"] / f"fold{f}" / "best.pt") for f in range(2)]
    beats = np.random.default_rng(0).random((8, 187), dtype=np.float32)
    rhythm = np.ones((8, 4), np.float32)
    np.testing.assert_allclose(Predictor(load_model_file(path), "cpu").predict_proba(beats, rhythm),
                               Predictor.from_checkpoint(best, "cpu").predict_proba(beats, rhythm), atol=1e-7)


def test_an_ensembles_fast_path_and_frozen_graph_match_plain():
    torch.manual_seed(0)
    member = {"model_name": "kachuee_rr", "model_args": create_model("kachuee_rr", 5).model_args}
    model = Combined(5, [member] * 3, "mean")
    model.temperatures.copy_(torch.tensor([0.7, 1.0, 1.6]))
    assert uses_cpu_fast_path(model) and not uses_cpu_fast_path(Combined(5, [{"model_name": "gru", "model_args": create_model("gru", 5).model_args}] * 2))
    x, r = torch.rand(256, 1, 187), torch.rand(256, 5)
    with torch.no_grad():
        plain = model.eval()(x, r)
        torch.testing.assert_close(plain.exp().sum(1), torch.ones(256))  # log of a mean probability
        torch.testing.assert_close(CPUForward(model)(x, r), plain, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(freeze_for_cpu(model)(x, r), plain, rtol=1e-5, atol=1e-5)


def test_finished_folds_are_kept_when_asked(folds):
    stamps = [(folds["run_dir"] / f"fold{f}" / "best.pt").stat().st_mtime_ns for f in range(2)]
    cfg = Config(**load_checkpoint(folds["run_dir"] / "fold0" / "best.pt")["config"])
    cfg.log_dir, cfg.run_name = str(folds["run_dir"].parent), folds["run_dir"].name
    again = train_folds(cfg, 2, reuse=True)
    assert [(again["run_dir"] / f"fold{f}" / "best.pt").stat().st_mtime_ns for f in range(2)] == stamps
    for f in range(2):  # members trained before a config key existed: it counts as its default
        last = load_checkpoint(folds["run_dir"] / f"fold{f}" / "last.pt")
        del last["config"]["focal_gamma"]
        save_checkpoint(folds["run_dir"] / f"fold{f}" / "last.pt", last)
    again = train_folds(cfg, 2, reuse=True)
    assert [(again["run_dir"] / f"fold{f}" / "best.pt").stat().st_mtime_ns for f in range(2)] == stamps


def test_members_must_be_alike(folds, quick_run):
    a, b = folds["members"]
    with pytest.raises(EcgnetError, match="needs 2 or more trained models, got 1"):
        combined_checkpoint([a], ["a"])
    with pytest.raises(EcgnetError, match=r"^q: its model_name 'kachuee' differs from a's 'kachuee_rr'"):
        combined_checkpoint([a, load_checkpoint(quick_run / "best.pt")], ["a", "q"])
    with pytest.raises(EcgnetError, match=r"is assembled \('combined'\) already"):
        combined_checkpoint([a, load_checkpoint(folds["run_dir"] / "best.pt")], ["a", "e"])


@pytest.mark.parametrize("args, world_size, expect", [
    (["--folds", "2", "--data-dir", BUNDLED_DIR], "1", "folds take whole patients, which needs the record of each beat"),
    (["--folds", "1"], "1", "key 'folds' must be 0 (one run) or K >= 2 (K folds of patients, --folds K), got 1"),
    (["--folds", "2", "--set", "store=data/store"], "1", "key 'folds' trains on resident data (data_dir), not on a store"),
    (["--set", "model=combined"], "1", "'combined' is not trained by itself: train one model with --folds K"),
    (["--folds", "2"], "2", "run them without torchrun"),
])
def test_bad_fold_requests_are_one_line_exit_2(tmp_path, capsys, monkeypatch, args, world_size, expect):
    monkeypatch.setenv("WORLD_SIZE", world_size)
    assert ecgnet("train", "--log-dir", tmp_path, "--epochs", "1", *args) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())


def test_too_many_folds_and_an_ensemble_trunk_are_refused(folds, interpatient_data, tmp_path, capsys):
    assert ecgnet("train", "--data-dir", interpatient_data, "--set", "model=kachuee_rr", "--log-dir", tmp_path, "--folds", "5") == 2
    assert "needs 2 <= folds <= 4 records, got 5" in capsys.readouterr().err
    with pytest.raises(EcgnetError, match="holds a 'combined' model, not one trained net; pass one member's best.pt"):
        train_small(tmp_path / "t", task="ptbdb", mode="frozen", pretrained=str(folds["run_dir"] / "best.pt"), epochs=1)


@pytest.mark.parametrize("keys, expect", [
    (dict(linear_expert=True), "key 'linear_expert' pools the ensemble of cross-validation folds with the linear model"),
    (dict(folds=1), "key 'folds' must be 0 (one run) or K >= 2"),
])
def test_the_api_validates_folds_and_linear_expert_as_the_cli_does(tmp_path, keys, expect):
    import ecgnet as api
    with pytest.raises(EcgnetError, match=re.escape(expect)):
        api.train(Config(log_dir=str(tmp_path), **keys))
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_the_api_trains_folds_from_the_config(interpatient_data, tmp_path):
    import ecgnet as api
    summary = api.train(Config(**FOLDS, folds=2, data_dir=str(interpatient_data), log_dir=str(tmp_path), run_name="api"))
    best = load_checkpoint(summary["run_dir"] / "best.pt")
    assert best["model_args"]["rule"] == "mean" and [m["source"] for m in best["members"]] == [
        str(tmp_path / "api" / f"fold{f}" / "best.pt") for f in range(2)]
    assert summary["data_dir"] is None and len(summary["members"]) == 2
