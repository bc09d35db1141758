"""Record templates (each beat beside its record's median beat) and the template model, on real record excerpts."""
import numpy as np
import pytest
import torch
from helpers import FIXTURES, ecgnet, train_small

from ecgnet.constants import TASKS
from ecgnet.data.augment import augment_beats, augment_minority
from ecgnet.data.datasets import BUNDLED_DIR, load_files, read_index
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import load_checkpoint
from ecgnet.models.fastpath import predict_logits
from ecgnet.models.registry import create_model
from ecgnet.serving.inference import Predictor
from ecgnet.serving.scoring import evaluate
from ecgnet.signals.records import read_recording
from ecgnet.signals.template import beat_templates, median_beat, record_templates
from ecgnet.training.evaluation import model_inputs

MITDB = FIXTURES / "mitdb"


@pytest.fixture(scope="module")
def prepared(interpatient_data):
    return load_files(interpatient_data, TASKS["mitbih"].train_stems, TASKS["mitbih"])


def test_templates_are_each_records_median_beat(prepared):
    data = prepared.with_templates("test")
    assert data.x.shape == (len(prepared), 2, 187) and torch.equal(data.x[:, 0], prepared.x[:, 0])
    records = prepared.records
    for record in ("201", "208", "209", "223"):
        rows = np.flatnonzero(records == record)
        expected = np.median(prepared.x[rows, 0].numpy(), axis=0)
        np.testing.assert_allclose(data.x[rows, 1].numpy(), np.broadcast_to(expected, (len(rows), 187)), atol=1e-7)
        assert expected[0] > 0.6          # the beats start at R (the paper's window): so does their median
    assert not torch.equal(data.x[records == "201", 1][0], data.x[records == "208", 1][0])


def test_a_records_minority_beats_lie_farther_from_its_template(prepared):
    # The template is the record's usual beat: N in 201 and 208, S in 209 (a run of SVT), V in 223 (bigeminy).
    # Every other class lies farther from it; F excepted, whose fusion beats blend the record's N and V.
    data = prepared.with_templates("test")
    y = prepared.y.numpy()
    majority = {}
    for record in ("201", "208", "209", "223"):
        rows = prepared.records == record
        distance = (data.x[rows, 0] - data.x[rows, 1]).abs().mean(1).numpy()
        counts = np.bincount(y[rows], minlength=5)
        usual = int(counts.argmax())
        majority[record] = usual
        for other in np.flatnonzero(counts >= 3):
            if other not in (usual, 3):
                assert np.median(distance[y[rows] == other]) > np.median(distance[y[rows] == usual]) + 0.005, (record, other)
    assert majority == {"201": 0, "208": 0, "209": 1, "223": 2}


def test_beat_templates_default_to_the_beats_median():
    beats = np.random.default_rng(0).random((7, 187), dtype=np.float32)
    np.testing.assert_array_equal(beat_templates(beats), np.broadcast_to(np.median(beats, 0), (7, 187)))
    np.testing.assert_array_equal(beat_templates(beats, beats[2]), np.broadcast_to(beats[2], (7, 187)))
    np.testing.assert_array_equal(record_templates(beats, np.array(list("aabbbab"))[:, None].ravel())[0], median_beat(beats[[0, 1, 5]]))


def test_augmentation_leaves_the_template_alone():
    x = torch.rand(16, 2, 187)
    y = torch.tensor([0, 1, 2, 3] * 4)
    out = augment_minority(x, y, 0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out[:, 1], x[:, 1])                           # the template channel
    torch.testing.assert_close(out[y == 0], x[y == 0])                       # the majority class
    expected = augment_beats(x[y != 0, :1], torch.Generator().manual_seed(3))
    torch.testing.assert_close(out[y != 0, :1], expected)                    # as the one-channel path
    one = augment_minority(x[:, :1], y, 0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(one, out[:, :1])


def test_template_model_needs_the_template_channel():
    model = create_model("kachuee_rrt", 5).eval()   # its fast paths: tests/test_rhythm.py
    with pytest.raises(ValueError, match="compares each beat with its record's template"):
        model(torch.rand(4, 1, 187), torch.rand(4, 5))
    assert model.model_args["template"] is True and "template" not in create_model("kachuee_rr", 5).model_args


def test_the_small_template_model_is_the_same_net_with_16_channels():
    small, full = create_model("kachuee_rrt_small", 5).eval(), create_model("kachuee_rrt", 5)
    assert small.model_args == full.model_args | {"channels": 16} and sum(p.numel() for p in small.parameters()) == 15_573
    with torch.no_grad():
        assert small(torch.rand(4, 2, 187), torch.rand(4, 5)).shape == (4, 5)


@pytest.fixture(scope="module")
def template_run(interpatient_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("rrt") / "rrt"
    train_small(run, data_dir=str(interpatient_data), model="kachuee_rrt", split_by="patients", val_fraction=0.25,
                epochs=2, imbalance="class_weights")
    return run / "best.pt"


def test_template_model_trains_tests_and_labels_a_record(template_run, interpatient_data, prepared, tmp_path, capsys):
    ckpt = load_checkpoint(template_run)
    assert ckpt["model_name"] == "kachuee_rrt" and ckpt["model_args"]["template"] is True
    assert evaluate(template_run, interpatient_data, "cpu")["n"] == len(prepared)
    code = ecgnet("predict", "--checkpoint", template_run, "--record", MITDB / "208", "--out", tmp_path / "o")
    assert code == 0, capsys.readouterr().err
    assert len((tmp_path / "o" / "beats.csv").read_text().splitlines()) > 60


def test_a_records_beats_get_the_same_answer_from_predictor_and_dataset(template_run, prepared, interpatient_data):
    # Labelling a recording takes the median of all its beats: the template the prepared file gives them.
    predictor = Predictor(load_checkpoint(template_run), "cpu", fast=False)
    n = len(prepared)
    records, features = read_index(interpatient_data / "mitbih_train_index.csv", n)
    rows = np.flatnonzero(records == "209")
    part = model_inputs(predictor.model, prepared.subset(rows), "test")
    expected = predict_logits(predictor.model, part.x, rhythm=part.rhythm)
    got = predictor.logits(prepared.x[rows, 0].numpy(), features[rows])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_template_model_refuses_beats_without_records(template_run, tmp_path, capsys):
    with pytest.raises(EcgnetError, match="carry none: the Kaggle CSVs hold single beats without rhythm"):
        train_small(tmp_path / "k", model="kachuee_rrt", epochs=1)
    bare = load_files(BUNDLED_DIR, TASKS["mitbih"].train_stems, TASKS["mitbih"])
    bare.rhythm = torch.zeros(len(bare), 5)                          # rhythm, but no record of each beat
    with pytest.raises(EcgnetError, match="the beats carry no record: the Kaggle CSVs hold single beats"):
        model_inputs(create_model("kachuee_rrt", 5), bare, "beats.csv")
    assert ecgnet("test", "--checkpoint", template_run, "--data-dir", BUNDLED_DIR) == 2
    err = capsys.readouterr().err
    assert "beats carry none" in err and err.count("\n") == 1
    code = ecgnet("predict", "--checkpoint", template_run, BUNDLED_DIR.parents[1] / "samples" / "mitbih_beats.csv")
    err = capsys.readouterr().err
    assert code == 2 and "classifies beats with their rhythm" in err and err.count("\n") == 1


def test_streamed_templates_are_the_median_of_the_beats_so_far():
    from ecgnet.signals.streaming import BeatStream
    rec = read_recording(MITDB / "208")
    stream = BeatStream(rec.fs, "gqrs", keep_templates=True)
    beats = []
    for i in range(0, len(rec.signal), 720):
        beats += stream.push(rec.signal[i:i + 720])
    beats += stream.finish()
    assert len(beats) > 60
    stacked = np.stack([b.beat for b in beats])
    for k in (0, 10, len(beats) - 1):
        np.testing.assert_allclose(beats[k].template, np.median(stacked[:k + 1], 0), atol=1e-7)
    assert all(b.template is None for b in BeatStream(rec.fs, "gqrs").push(rec.signal[:3600 * 4]))


def test_template_model_exports_to_onnx_with_parity(template_run, tmp_path):
    from ecgnet.serving.labelling import label_record
    from ecgnet.serving.onnx_backend import OnnxPredictor
    assert ecgnet("export", "--checkpoint", template_run, "--onnx", tmp_path / "rrt.onnx") == 0
    onnx = OnnxPredictor(tmp_path / "rrt.onnx")
    assert onnx.needs_template and onnx.needs_rhythm
    recording = read_recording(MITDB / "208")
    onnx_result = label_record(onnx, recording)
    torch_result = label_record(Predictor.from_checkpoint(template_run, "cpu", fast=False), recording)
    columns = [c for c in torch_result["table"] if c.startswith("p_")]
    assert max(np.abs(onnx_result["table"][c] - torch_result["table"][c]).max() for c in columns) <= 1e-5


def test_template_model_refuses_a_store(template_run, interpatient_data, tmp_path, capsys):
    assert ecgnet("store", tmp_path / "s", "--data-dir", interpatient_data, "--set", "split_by=patients",
                  "--set", "val_fraction=0.25") == 0
    code = ecgnet("train", "--set", "model=kachuee_rrt", "--set", f"store={tmp_path / 's'}", "--log-dir", tmp_path / "log",
                  "--epochs", "1")
    err = capsys.readouterr().err
    assert code == 2 and "which a store does not hold; train it on resident data" in err and err.count("\n") == 1


def test_template_model_splits_into_trunk_and_head_and_transfers(prepared):
    from ecgnet.models.checkpoint import load_trunk
    data = prepared.with_templates("test")
    x, r = data.x[:64], data.rhythm[:64]
    source = create_model("kachuee_rrt", 5).eval()
    assert torch.equal(source(x, r), source.forward_head(source.forward_features(x, r)))
    target = create_model("kachuee_rrt", 2)
    load_trunk(target, {"task": "mitbih", "model_name": "kachuee_rrt", "model_args": source.model_args, "model": source.state_dict()}, "source")
    target.eval()
    assert torch.equal(target.forward_features(x, r), source.forward_features(x, r))
    target.reset_classifier(3)
    assert target(x, r).shape == (64, 3)
