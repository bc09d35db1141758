"""Rhythm features, the rhythm-aware model and record-wise validation, on real record excerpts."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import FIXTURES, ecgnet, train_small
from sklearn.metrics import confusion_matrix

from ecgnet.constants import TASKS
from ecgnet.data.datasets import BUNDLED_DIR, group_split, load_files, load_splits, patients_of, read_index
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import save_checkpoint
from ecgnet.models.fastpath import CPUForward, freeze_for_cpu
from ecgnet.models.registry import create_model
from ecgnet.serving.inference import Predictor
from ecgnet.serving.scoring import evaluate
from ecgnet.signals.context import BeatContext
from ecgnet.signals.fibrillation import gate_premature, irregular_rhythm
from ecgnet.signals.records import read_beat_annotations
from ecgnet.signals.rhythm import RHYTHM_FEATURES, check_rhythm, rhythm_features, rhythm_inputs

MITDB = FIXTURES / "mitdb"


def test_features_of_a_real_record_by_hand():
    # 209, one minute of supraventricular tachycardia: R peaks at samples 115, 255, 387, ... (360 Hz).
    samples, _ = read_beat_annotations(MITDB / "209")
    assert samples[:3].tolist() == [115, 255, 387] and samples[11] == 1609 and samples[1] == 255
    f = rhythm_features(samples, 360)
    record = (samples[-1] - samples[0]) / (len(samples) - 1) / 360   # every interval is plausible here
    np.testing.assert_allclose(f[1], [140 / 360, 132 / 360, 140 / 360, record], rtol=1e-5)
    np.testing.assert_allclose(f[2, 2], (140 + 132) / 2 / 360, rtol=1e-5)               # local: the 2 intervals so far
    np.testing.assert_allclose(f[11, 2], (1609 - 255) / 10 / 360, rtol=1e-5)            # local: the last 10 intervals
    np.testing.assert_allclose(f[0, :2], [record, 140 / 360], rtol=1e-5)                # no interval before beat 1
    np.testing.assert_allclose(f[-1, 1], record, rtol=1e-5)                             # none after the last beat


def test_premature_beats_stand_out_in_the_ratios():
    # In 201's minute the S beats come early: their interval before, relative to the local rhythm, is short.
    samples, labels = read_beat_annotations(MITDB / "201")
    inputs = rhythm_inputs(rhythm_features(samples, 360))
    pre_over_local = inputs[:, 3]                      # log(pre / local) in units of 10%
    assert np.median(pre_over_local[labels == 1]) < -1.5 < 0.5 < np.median(pre_over_local[labels == 0]) + 1
    assert np.abs(inputs).max() <= 10


def test_features_do_not_depend_on_the_sampling_rate():
    samples, _ = read_beat_annotations(MITDB / "208")
    np.testing.assert_allclose(rhythm_features(samples, 360), rhythm_features(samples * 2, 720), rtol=1e-6)


@pytest.mark.parametrize("samples, expect", [
    ([100], "at least two beats"),
    ([100, 100, 400], "strictly increasing"),
])
def test_bad_positions(samples, expect):
    with pytest.raises(EcgnetError, match=expect):
        rhythm_features(np.array(samples), 360)


@pytest.mark.parametrize("values, n, expect", [
    (np.ones((3, 3)), 3, "must be 4 columns"),
    (np.ones((2, 4)), 3, "2 rows of rhythm features for 3 beats"),
    (np.array([[1, 1, np.nan, 1]] * 3), 3, "row 1: rhythm features must be finite and positive"),
    (np.array([[1, 1, 1, 1], [1, -1, 1, 1], [1, 1, 1, 1]]), 3, "row 2: rhythm features must be finite and positive"),
])
def test_rhythm_side_files_are_validated(values, n, expect):
    with pytest.raises(EcgnetError, match=expect):
        check_rhythm(values, n, "x_index.csv")


def test_prepare_writes_rhythm_beside_the_beats(interpatient_data):
    records, features = read_index(interpatient_data / "mitbih_train_index.csv", len(records_of(interpatient_data)))
    assert set(records) == {"201", "208", "209", "223"} and features.shape == (len(records), 4)
    # The side file holds the same features the prediction path computes from the record's positions.
    samples, _ = read_beat_annotations(MITDB / "209")
    rows = records == "209"
    direct = rhythm_features(samples, 360)
    assert np.isclose(features[rows][:, None, 0], direct[None, :, 0], atol=1e-5).any(axis=1).all()


def records_of(folder):
    import pandas as pd
    return pd.read_csv(folder / "mitbih_train_index.csv", dtype={"record": str})["record"].to_numpy()


@pytest.mark.parametrize("seed", range(5))
def test_patient_wise_validation_never_shares_a_record(interpatient_data, seed):
    splits = load_splits(TASKS["mitbih"], interpatient_data, 0.25, 0.2, seed, by_patients=True)
    train, val = set(splits.train.records), set(splits.val.records)
    assert train and val and not train & val and len(val) == 1
    for c in (1, 2):  # S and V on both sides
        assert (splits.train.y == c).any() and (splits.val.y == c).any()


def test_patient_split_refuses_impossible_requests():
    records = np.array(["a", "a", "b", "b"])
    with pytest.raises(EcgnetError, match="no choice of 1 of 2 patients"):
        group_split(records, np.array([0, 1, 0, 0]), 0.5, 0, required=(1,))
    with pytest.raises(EcgnetError, match="needs more than 1 patient"):
        group_split(np.array(["a", "a"]), np.array([1, 2]), 0.5, 0, required=(1,))


def test_ptb_patients_never_cross_the_test_split(tmp_path):
    assert ecgnet("prepare", "ptbdb", "--src", FIXTURES / "ptbdb", "--out", tmp_path) == 0
    records, _ = read_index(tmp_path / "ptbdb_normal_index.csv", len(open(tmp_path / "ptbdb_normal.csv").readlines()))
    assert set(patients_of(records)) == {"patient104"}
    with pytest.raises(EcgnetError, match="no choice of 1 of 2 patients puts classes"):  # one healthy, one MI patient
        load_splits(TASKS["ptbdb"], tmp_path, 0.5, 0.5, 0, by_patients=True)


@pytest.mark.parametrize("name, channels", [("kachuee_rr", 1), ("kachuee_rrt", 2)])  # rrt: beat and template
def test_rhythm_model_fast_path_and_frozen_graph_match_plain(name, channels):
    torch.manual_seed(0)
    model = create_model(name, 5).train()
    x, r = torch.rand(6, channels, 187), torch.rand(6, 5)
    torch.testing.assert_close(CPUForward(model)(x, r), model(x, r), rtol=1e-5, atol=1e-6)
    model.eval()
    x, r = torch.rand(256, channels, 187), torch.rand(256, 5)
    with torch.no_grad():
        torch.testing.assert_close(freeze_for_cpu(model)(x, r), model(x, r), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="takes rhythm inputs"):
        model(x)


def test_rhythm_model_trains_and_tests_on_prepared_data(interpatient_data, tmp_path):
    summary = train_small(tmp_path / "rr", data_dir=str(interpatient_data), model="kachuee_rr", split_by="patients",
                          val_fraction=0.25, epochs=2, imbalance="class_weights")
    assert summary["epochs"] == 2
    from ecgnet.models.checkpoint import load_checkpoint
    ckpt = load_checkpoint(tmp_path / "rr" / "best.pt")
    assert ckpt["model_name"] == "kachuee_rr" and ckpt["model_args"]["rhythm_dim"] == 5
    assert len(ckpt["split"]["val_records"]) == 1
    metrics = evaluate(tmp_path / "rr" / "best.pt", interpatient_data, "cpu")
    assert metrics["n"] == len(records_of(interpatient_data))
    # scored as predict --record labels: S calls in irregular rhythm (here 208's minute) made N. With its S logit raised
    # the model calls S everywhere, so the gate must show in the confusion matrix.
    index = pd.read_csv(interpatient_data / "mitbih_test_index.csv", dtype={"record": str})
    irregular = np.concatenate([irregular_rhythm(g["pre_rr"].to_numpy()) for _, g in index.groupby("record", sort=False)])
    test = load_files(interpatient_data, ("mitbih_test",), TASKS["mitbih"])
    np.testing.assert_array_equal(test.irregular, irregular)
    s_caller = ckpt | {"model": ckpt["model"] | {"head.3.bias": ckpt["model"]["head.3.bias"] + torch.tensor([0, 8.0, 0, 0, 0])}}
    save_checkpoint(tmp_path / "s_caller.pt", s_caller)
    metrics = evaluate(tmp_path / "s_caller.pt", interpatient_data, "cpu")
    assert 0 < irregular.mean() < 1 and metrics["irregular_rhythm_share"] == pytest.approx(irregular.mean())
    predictor = Predictor(s_caller, "cpu", fast=False)
    unknown = BeatContext.of_beats(test.x[:, 0].numpy(), index[list(RHYTHM_FEATURES)].to_numpy(), irregular=np.zeros(len(test), bool))
    probs = predictor.predict_proba(unknown)                                     # as the model answers
    gated = predictor.predict_proba(test.context()).argmax(1)                    # the file's beats in context: the rule applied
    np.testing.assert_array_equal(gated, gate_premature(probs, irregular, ckpt["class_names"]).argmax(1))
    assert (probs.argmax(1)[irregular] == 1).sum() > 50 and not (gated[irregular] == 1).any()
    np.testing.assert_array_equal(metrics["confusion_matrix"], confusion_matrix(test.y.numpy(), gated, labels=range(5)))


def test_rhythm_model_refuses_kaggle_csvs(interpatient_data, tmp_path, capsys):
    with pytest.raises(EcgnetError, match="carry none: the Kaggle CSVs hold single beats without rhythm"):
        train_small(tmp_path / "k", model="kachuee_rr", epochs=1)
    train_small(tmp_path / "rr", data_dir=str(interpatient_data), model="kachuee_rr", epochs=1, split_by="patients", val_fraction=0.25)
    assert ecgnet("test", "--checkpoint", tmp_path / "rr" / "best.pt", "--data-dir", BUNDLED_DIR) == 2
    assert "beats carry none" in capsys.readouterr().err
    code = ecgnet("predict", "--checkpoint", tmp_path / "rr" / "best.pt", BUNDLED_DIR.parents[1] / "samples" / "mitbih_beats.csv")
    err = capsys.readouterr().err
    assert code == 2 and "classifies beats with their rhythm" in err and err.count("\n") == 1
    assert ecgnet("train", "--data-dir", BUNDLED_DIR, "--set", "model=kachuee_rr", "--log-dir", tmp_path, "--epochs", "1") == 2
    assert "Kaggle CSVs hold single beats" in capsys.readouterr().err
    assert not (tmp_path / "mitbih-scratch").exists() and len(list(tmp_path.iterdir())) == 2  # no run dir was made


def test_predict_record_with_a_rhythm_model(interpatient_data, tmp_path, capsys):
    train_small(tmp_path / "rr", data_dir=str(interpatient_data), model="kachuee_rr", epochs=1, split_by="patients", val_fraction=0.25)
    # 201's first minute is regular; 208's frequent ventricular beats and couplets make its minute irregular throughout
    for record, share in (("201", 0.0), ("208", 1.0)):
        code = ecgnet("predict", "--checkpoint", tmp_path / "rr" / "best.pt", "--record", MITDB / record, "--out", tmp_path / record)
        assert code == 0, capsys.readouterr().err
        rows = (tmp_path / record / "beats.csv").read_text().splitlines()
        assert rows[0] == ("time_s,sample,class,name,probability,p_N,p_S,p_V,p_F,p_Q,pre_rr,post_rr,local_rr,record_rr,"
                           "irregular_rhythm") and len(rows) > 40
        pre = np.array([float(r.split(",")[10]) for r in rows[1:]])
        assert 0.2 < np.median(pre) < 1.5
        p_s, irregular = (np.array([float(r.split(",")[k]) for r in rows[1:]]) for k in (6, 14))
        assert irregular.mean() == share and np.all(p_s[irregular == 1] == 0) and np.all(p_s[irregular == 0] > 0)
        assert json.loads((tmp_path / record / "summary.json").read_text())["irregular_rhythm_share"] == share


def test_wider_window_keeps_the_samples_before_r():
    from ecgnet.signals.preprocess import minmax, resample, rescale_positions, segment_beats
    from ecgnet.signals.records import read_wfdb
    rec = read_wfdb(MITDB / "209")
    samples, _ = read_beat_annotations(MITDB / "209")
    signal, r = resample(rec.signal, rec.fs), rescale_positions(samples, rec.fs)
    paper, wide = segment_beats(signal, r), segment_beats(signal, r, before_r=31)
    assert (r[wide.index] >= 31).all() and len(wide.beats) >= len(paper.beats) - 1
    early = segment_beats(signal, np.concatenate([[10], r]), before_r=31)
    assert 0 not in early.index                           # an R 10 samples in has no 31 samples before it
    i = 5
    j = int(np.flatnonzero(paper.index == wide.index[i])[0])
    length = int(np.count_nonzero(paper.beats[j][1:])) + 1  # the paper's beat, up to its zero padding
    start = r[wide.index[i]] - 31
    np.testing.assert_allclose(wide.beats[i][:31 + length], minmax(signal[start:start + 31 + length]), atol=1e-6)


@pytest.fixture(scope="module")
def wide_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("wide")
    src = out / "mitdb"
    shutil.copytree(MITDB, src)
    assert ecgnet("prepare", "mitdb", "--src", src, "--out", out / "data", "--split", "interpatient", "--before-r", "0.25") == 0
    for suffix in (".csv", "_index.csv"):
        shutil.copy(out / "data" / f"mitbih_train{suffix}", out / "data" / f"mitbih_test{suffix}")
    return out / "data"


def test_the_beat_window_travels_from_prepare_to_prediction(wide_data, interpatient_data, tmp_path, capsys):
    import json

    from ecgnet.models.checkpoint import load_checkpoint
    from ecgnet.serving.inference import Predictor
    assert json.loads((wide_data / "mitbih_recipe.json").read_text())["before_r_s"] == 0.25
    train_small(tmp_path / "w", data_dir=str(wide_data), model="kachuee_rr", epochs=1, split_by="patients", val_fraction=0.25)
    assert load_checkpoint(tmp_path / "w" / "best.pt")["recipe"]["before_r_s"] == 0.25
    assert Predictor.from_checkpoint(tmp_path / "w" / "best.pt", "cpu").before_r_s == 0.25
    assert ecgnet("test", "--checkpoint", tmp_path / "w" / "best.pt", "--data-dir", interpatient_data) == 2
    assert "starting 0.25 s before R, but the beats in" in capsys.readouterr().err
    assert ecgnet("predict", "--checkpoint", tmp_path / "w" / "best.pt", "--record", MITDB / "223", "--out", tmp_path / "o") == 0


@pytest.mark.parametrize("args, content, expect", [
    (["--before-r", "2"], None, "give seconds in [0, 1]"),
    ([], "{not json", "unreadable recipe file"),
    ([], '{"before_r_s": "wide"}', "'before_r_s' must be a number of seconds"),
])
def test_bad_beat_windows(interpatient_data, tmp_path, capsys, args, content, expect):
    if content is None:
        assert ecgnet("prepare", "mitdb", "--src", MITDB, "--out", tmp_path, *args) == 2
        assert expect in capsys.readouterr().err
        return
    for f in interpatient_data.glob("mitbih_*"):
        shutil.copy(f, tmp_path)
    (tmp_path / "mitbih_recipe.json").write_text(content)
    with pytest.raises(EcgnetError, match=expect):
        load_splits(TASKS["mitbih"], tmp_path, 0.25, 0.2, 0)


@pytest.mark.parametrize("model, params", [("kachuee", "55,013"), ("kachuee_rr", "55,173")])
def test_summary_of_each_registered_model(capsys, model, params):
    assert ecgnet("train", "--summary", "--set", f"model={model}") == 0
    assert f"Total params: {params}" in capsys.readouterr().out
