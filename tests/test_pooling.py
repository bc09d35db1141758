"""The linear rhythm model (``ecgnet.models.linear``) and pooling it with the folds' ensemble (``ecgnet.models.combined``, the product rule),
on real MIT-BIH excerpts."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import FIXTURES, ecgnet
from sklearn.linear_model import LogisticRegression

from ecgnet.config import Config
from ecgnet.constants import TASKS
from ecgnet.data.datasets import BUNDLED_DIR, load_files, read_index, read_recipe
from ecgnet.errors import EcgnetError
from ecgnet.models import linear as linear_module
from ecgnet.models.checkpoint import load_checkpoint
from ecgnet.models.combined import Combined
from ecgnet.models.fastpath import CPUForward, freeze_for_cpu, uses_cpu_fast_path
from ecgnet.models.linear import MIN_CLASS_BEATS, fit_linear
from ecgnet.models.registry import create_model
from ecgnet.serving.inference import Predictor
from ecgnet.signals.context import BeatContext
from ecgnet.signals.rhythm import rhythm_inputs
from ecgnet.training.assemble import combined_checkpoint, fold_members, linear_checkpoint
from ecgnet.training.crossval import matched_rows, pool_calibration, train_folds

MITBIH = TASKS["mitbih"]
FOLDS = dict(model="kachuee_rrt", epochs=1, batch_size=32, num_threads=1, device="cpu", patience=0, imbalance="class_weights",
             folds=2, linear_expert=True)


def as_answered(beats: np.ndarray, features: np.ndarray) -> BeatContext:
    """Beats of several records with their rhythm, the irregular-rhythm rule off: the models' own probabilities."""
    return BeatContext.of_beats(beats, features, irregular=np.zeros(len(beats), bool))


@pytest.fixture(scope="module")
def data(interpatient_data):
    return load_files(interpatient_data, ("mitbih_train",), MITBIH)


@pytest.fixture(scope="module")
def pooled_run(interpatient_data, tmp_path_factory):
    cfg = Config(**FOLDS, data_dir=str(interpatient_data), log_dir=str(tmp_path_factory.mktemp("pool")), run_name="cv2").validate()
    return train_folds(cfg, 2)["run_dir"]


def test_the_linear_model_is_its_logistic_regression(data, interpatient_data):
    counts = data.class_counts()
    assert (counts >= MIN_CLASS_BEATS).sum() >= 3 and (counts < MIN_CLASS_BEATS).any()  # the excerpts hold a rare class
    model = fit_linear(data)
    beats = data.x.numpy()[:, 0]
    _, features = read_index(interpatient_data / "mitbih_train_index.csv", len(data))
    x = np.hstack([rhythm_inputs(features), beats[:, ::9]]).astype(np.float64)
    fitted = counts[data.y.numpy()] >= MIN_CLASS_BEATS
    z = (x - x[fitted].mean(0)) / x[fitted].std(0)
    reference = LogisticRegression(C=0.1, class_weight="balanced", max_iter=3000).fit(z[fitted], data.y.numpy()[fitted])
    ckpt = linear_checkpoint(model, Config(), interpatient_data, {"before_r_s": 0.0}, len(data))
    probs = Predictor(ckpt, "cpu").predict_proba(as_answered(beats, features))
    np.testing.assert_allclose(probs[:, reference.classes_], reference.predict_proba(z), atol=1e-4)
    assert probs[:, counts < MIN_CLASS_BEATS].max() < 1e-9      # a class it was not fitted on is never called
    assert (probs.argmax(1) == data.y.numpy()).mean() > 0.7


def test_pooling_is_the_normalised_product_of_the_experts():
    torch.manual_seed(0)
    experts = [create_model("kachuee_rrt", 5), create_model("kachuee_rr", 5)]
    model = Combined(5, [{"model_name": "kachuee_rrt", "model_args": experts[0].model_args},
                         {"model_name": "kachuee_rr", "model_args": experts[1].model_args}], "product").eval()
    for k, e in enumerate(experts):
        model.members[k].load_state_dict(e.state_dict())
    model.temperatures.copy_(torch.tensor([0.8, 1.5]))
    x, r = torch.rand(16, 2, 187), torch.randn(16, 5)
    with torch.no_grad():
        p0 = (experts[0].eval()(x, r) / 0.8).softmax(1)
        p1 = (experts[1].eval()(x[:, :1], r) / 1.5).softmax(1)      # it reads the beat, not the template
        expected = (p0 * p1).sqrt() / (p0 * p1).sqrt().sum(1, keepdim=True)
        torch.testing.assert_close(model(x, r).exp(), expected, rtol=1e-5, atol=1e-6)
    assert model.template and model.rhythm_dim == 5


def test_folds_with_linear_expert_pool_the_ensemble_with_the_linear_model(pooled_run, data, interpatient_data):
    best, ensemble, linear = (load_checkpoint(pooled_run / f) for f in ("best.pt", "ensemble.pt", "linear.pt"))
    assert (best["model_name"], ensemble["model_name"], linear["model_name"]) == ("combined", "combined", "linear_rr")
    assert linear["split"]["n_train"] == len(data) and best["split"]["val_records"] == ensemble["split"]["val_records"]
    assert not load_checkpoint(pooled_run / "fold0" / "best.pt")["config"]["linear_expert"]   # members are plain runs
    assert best["config"]["linear_expert"] and best["config"]["run_name"] == "cv2"
    beats = data.x.numpy()[:, 0]
    _, features = read_index(interpatient_data / "mitbih_train_index.csv", len(data))
    p_e, p_l = (Predictor(c, "cpu").predict_proba(as_answered(beats, features)) for c in (ensemble, linear))
    fitted = data.class_counts() >= MIN_CLASS_BEATS
    assert not fitted.all() and np.array_equal(linear["model"]["fitted"].numpy(), fitted.astype(np.float32))
    product = np.where(fitted, np.sqrt(p_e * p_l), p_e)             # where the linear model abstains the ensemble decides
    calibrated = product ** (1 / best["calibration"]["temperature"])  # then the pool's own temperature
    np.testing.assert_allclose(Predictor(best, "cpu").predict_proba(as_answered(beats, features)),
                               calibrated / calibrated.sum(1, keepdims=True), atol=1e-5)


def test_the_pools_temperature_is_fitted_on_patients_each_pool_never_saw(pooled_run, data, interpatient_data, monkeypatch):
    # the excerpts are too small for a linear model per fold at 50 beats a class: the run kept temperature 1 (warned) ...
    assert load_checkpoint(pooled_run / "best.pt")["calibration"]["temperature"] == 1.0
    monkeypatch.setattr(linear_module, "MIN_CLASS_BEATS", 10)          # ... which 10 allow
    members = [load_checkpoint(pooled_run / f"fold{f}" / "best.pt") for f in range(2)]
    held = [np.isin(data.records, m["split"]["val_records"]) for m in members]
    cfg = Config(**FOLDS, data_dir=str(interpatient_data))
    calibration = pool_calibration(members, [np.flatnonzero(h) for h in held], data, np.arange(len(data)), cfg, interpatient_data)
    _, features = read_index(interpatient_data / "mitbih_train_index.csv", len(data))
    log_probs, labels = [], []
    for member, h in zip(members, held):  # by hand: the member's patients, and a linear model fitted on the other fold's beats
        linear = linear_checkpoint(fit_linear(data.subset(np.flatnonzero(~h))), cfg, interpatient_data, member["recipe"], 0)
        pool = Predictor(combined_checkpoint([member, linear], ["m", "l"], "product"), "cpu")
        for record in np.unique(data.records[h]):
            rows = data.records == record
            log_probs.append(np.log(pool.predict_proba(as_answered(data.x.numpy()[rows, 0], features[rows]))))
            labels.append(data.y.numpy()[rows])
    log_probs, labels = np.concatenate(log_probs), np.concatenate(labels)
    assert len(labels) == len(data)                                  # every training beat judged out of fold

    def nll(t):
        z = log_probs / t
        return -(z[np.arange(len(z)), labels] - np.log(np.exp(z).sum(1))).mean()
    t = calibration["temperature"]
    assert t != 1.0 and nll(t) <= min(nll(t * 1.05), nll(t / 1.05)) and "out-of-fold" in calibration["fitted_on"]


@pytest.fixture(scope="module")
def detected_q_data(tmp_path_factory):
    """The DS1 excerpts cut at Pan-Tompkins' detections, those matching no annotated beat labelled Q (208's minute has 6+)."""
    out = tmp_path_factory.mktemp("dq")
    shutil.copytree(FIXTURES / "mitdb", out / "mitdb")
    assert ecgnet("prepare", "mitdb", "--src", out / "mitdb", "--out", out / "data", "--split", "interpatient",
                  "--positions", "nk-pantompkins1985", "--unmatched", "q") == 0
    shutil.copy(out / "data" / "mitbih_train.csv", out / "data" / "mitbih_test.csv")
    shutil.copy(out / "data" / "mitbih_train_index.csv", out / "data" / "mitbih_test_index.csv")
    return out / "data"


def test_the_linear_expert_is_fitted_on_matched_beats_only(detected_q_data, data, interpatient_data):
    full = load_files(detected_q_data, ("mitbih_train",), MITBIH)
    y, rows = full.y.numpy(), np.arange(len(full))
    q = MITBIH.class_names.index("Q")
    index = pd.read_csv(detected_q_data / "mitbih_train_index.csv", dtype={"record": str})
    assert (y == q).sum() >= 5 and set(index["record"][y == q]) >= {"208"}     # the spurious detections
    kept = matched_rows(full, rows, read_recipe(detected_q_data, MITBIH), MITBIH)
    np.testing.assert_array_equal(kept, np.flatnonzero(y != q))
    assert matched_rows(full, rows[::2], {"unmatched": "drop"}, MITBIH).tolist() == rows[::2].tolist()
    annotated = read_recipe(interpatient_data, MITBIH)
    assert matched_rows(data, np.arange(len(data)), annotated, MITBIH).tolist() == list(range(len(data)))


@pytest.mark.slow
def test_folds_fit_the_linear_expert_without_the_unmatched_detections(detected_q_data, tmp_path):
    cfg = Config(**FOLDS, data_dir=str(detected_q_data), log_dir=str(tmp_path), run_name="q2").validate()
    run_dir = train_folds(cfg, 2)["run_dir"]
    linear, ensemble = (load_checkpoint(run_dir / f) for f in ("linear.pt", "ensemble.pt"))
    full = load_files(detected_q_data, ("mitbih_train",), MITBIH)
    q = MITBIH.class_names.index("Q")
    assert linear["split"]["n_train"] == int((full.y.numpy() != q).sum()) < ensemble["split"]["n_train"]
    assert linear["model"]["fitted"][q] == 0          # the network alone decides Q: it learnt the spurious detections


@pytest.mark.slow
def test_a_pooled_model_labels_a_record_and_exports_with_parity(pooled_run, tmp_path, capsys):
    best = pooled_run / "best.pt"
    assert ecgnet("predict", "--checkpoint", best, "--record", FIXTURES / "mitdb" / "209", "--out", tmp_path / "o") == 0, \
        capsys.readouterr().err
    rows = (tmp_path / "o" / "beats.csv").read_text().splitlines()
    assert rows[0].startswith("time_s,sample,class,name,probability,p_N,p_S") and len(rows) > 40
    assert sum(json.loads((tmp_path / "o" / "summary.json").read_text())["per_class"].values()) == len(rows) - 1
    assert ecgnet("export", "--checkpoint", best, "--onnx", tmp_path / "p.onnx") == 0
    from ecgnet.serving.onnx_backend import OnnxPredictor
    rng = np.random.default_rng(0)
    beats, rhythm = rng.random((40, 187), dtype=np.float32), rng.uniform(0.5, 1.2, (40, 4)).astype(np.float32)
    np.testing.assert_allclose(OnnxPredictor(tmp_path / "p.onnx").predict_proba(beats, rhythm),
                               Predictor.from_checkpoint(best, "cpu").predict_proba(beats, rhythm), atol=1e-5)


def test_a_pool_splits_back_into_its_fold_members(pooled_run, quick_run):
    best = load_checkpoint(pooled_run / "best.pt")
    members = fold_members(best)
    for f, member in enumerate(members):
        trained = load_checkpoint(pooled_run / f"fold{f}" / "best.pt")
        assert member["split"]["val_records"] == trained["split"]["val_records"]
        assert member["calibration"]["temperature"] == pytest.approx(trained["calibration"]["temperature"])
        assert member["model"].keys() == trained["model"].keys()
        assert all(torch.equal(member["model"][k], trained["model"][k]) for k in trained["model"])
    with pytest.raises(EcgnetError, match="not a pool of a folds' ensemble and a linear model"):
        fold_members(load_checkpoint(quick_run / "best.pt"))


def test_pooled_experts_must_classify_the_same_beats(pooled_run, quick_run):
    ensemble, other = load_checkpoint(pooled_run / "ensemble.pt"), load_checkpoint(quick_run / "best.pt")
    with pytest.raises(EcgnetError, match="combining needs 2 or more trained models, got 1"):
        combined_checkpoint([ensemble], ["e"], "product")
    other["task"] = "ptbdb"
    with pytest.raises(EcgnetError, match="^q: its task 'ptbdb' differs from e's 'mitbih'; models combined by their product "
                                          "must be of one task and beat recipe"):
        combined_checkpoint([ensemble, other], ["e", "q"], "product")


def test_the_linear_model_needs_rhythm_and_two_classes(data):
    plain = load_files(BUNDLED_DIR, ("mitbih_test",), MITBIH)
    with pytest.raises(EcgnetError, match="reads each beat's rhythm, which these beats do not carry"):
        fit_linear(plain)
    normal = data.subset(np.flatnonzero(data.y.numpy() == 0))
    with pytest.raises(EcgnetError, match=r"needs 2 or more classes with 50\+ training beats, got 1 \(N\)"):
        fit_linear(normal)


@pytest.fixture(scope="module")
def records_without_rhythm(interpatient_data, tmp_path_factory):
    """The prepared excerpts with index files that hold each beat's record but no rhythm (as older files did)."""
    out = tmp_path_factory.mktemp("norhythm")
    for stem in ("mitbih_train", "mitbih_test"):
        shutil.copy(interpatient_data / f"{stem}.csv", out)
        index = pd.read_csv(interpatient_data / f"{stem}_index.csv", dtype={"record": str})
        index[["row", "record", "sample", "label"]].to_csv(out / f"{stem}_index.csv", index=False)
    return out


@pytest.mark.parametrize("args, expect", [
    (["--folds", "2", "--data-dir", "NO_RHYTHM"], "linear_expert reads each beat's rhythm, which these beats do not carry"),
    (["--data-dir", "NO_RHYTHM"], "key 'linear_expert' pools the ensemble of cross-validation folds with the linear model: set folds (--folds K)"),
    (["--set", "model=linear_rr"], "'linear_rr' is not trained by itself"),
    (["--set", "model=combined"], "'combined' is not trained by itself"),
])
def test_bad_linear_expert_requests_are_one_line_exit_2(records_without_rhythm, tmp_path, capsys, args, expect):
    args = [str(records_without_rhythm) if a == "NO_RHYTHM" else a for a in args]
    assert ecgnet("train", "--log-dir", tmp_path, "--epochs", "1", "--set", "linear_expert=true", *args) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())


def test_a_pooled_models_fast_path_and_frozen_graph_match_plain(data):
    torch.manual_seed(0)
    cnn = Combined(5, [{"model_name": "kachuee_rrt", "model_args": create_model("kachuee_rrt", 5).model_args}] * 2, "mean")
    linear = fit_linear(data)
    model = Combined(5, [{"model_name": "combined", "model_args": cnn.model_args},
                         {"model_name": "linear_rr", "model_args": linear.model_args}], "product").eval()
    model.members[0].load_state_dict(cnn.state_dict())
    model.members[1].load_state_dict(linear.state_dict())
    model.temperatures.copy_(torch.tensor([1.3, 1.0]))
    assert uses_cpu_fast_path(model) and not uses_cpu_fast_path(Combined(5, [
        {"model_name": "gru", "model_args": create_model("gru", 5).model_args},
        {"model_name": "linear_rr", "model_args": linear.model_args}], "product"))
    x, r = torch.rand(256, 2, 187), torch.randn(256, 5)
    with torch.no_grad():
        plain = model(x, r)
        torch.testing.assert_close(CPUForward(model)(x, r), plain, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(freeze_for_cpu(model)(x, r), plain, rtol=1e-5, atol=1e-5)
