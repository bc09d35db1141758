"""ONNX export and the ONNX Runtime backend: parity with PyTorch, no torch import, bad files."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import ENV, FIXTURES, ROOT, SAMPLES, ecgnet
from onnx import TensorProto, helper

from ecgnet.data.beatfiles import read_beats, read_beats_file
from ecgnet.data.datasets import BUNDLED_DIR
from ecgnet.serving.inference import Predictor
from ecgnet.serving.onnx_backend import OnnxPredictor

REC_208 = FIXTURES / "mitdb" / "208"


@pytest.fixture(scope="module")
def exported(quick_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "quick.onnx"
    assert ecgnet("export", "--checkpoint", quick_run / "best.pt", "--onnx", path) == 0
    return path


def test_onnx_runtime_matches_pytorch_to_1e_5(quick_run, exported):
    torch_predictor = Predictor.from_checkpoint(quick_run / "best.pt", "cpu", fast=False)
    onnx_predictor = OnnxPredictor(exported)
    assert onnx_predictor.class_names == torch_predictor.class_names and onnx_predictor.task == "mitbih"
    for beats in (read_beats_file(SAMPLES / "mitbih_beats.csv")[0], read_beats(BUNDLED_DIR / "mitbih_test.csv.xz")[0], read_beats_file(SAMPLES / "mitbih_beats.csv")[0][:1]):
        a, b = onnx_predictor.predict_proba(beats), torch_predictor.predict_proba(beats)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5


def test_onnx_file_carries_its_metadata(exported):
    model = onnx.load(exported)
    meta = json.loads({p.key: p.value for p in model.metadata_props}["ecgnet"])
    assert meta["class_names"] == ["N", "S", "V", "F", "Q"] and meta["sample_rate"] == 125 and meta["beat_length"] == 187
    assert meta["temperature"] > 0 and meta["recipe"] == {"before_r_s": 0.0}
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param  # dynamic batch


def test_onnxruntime_path_never_imports_torch(quick_run, exported, tmp_path):
    code = ("import sys\n"
            "class NoTorch:\n"   # any 'import torch' now fails (a machine without PyTorch)
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch': raise ImportError('no torch here')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from ecgnet.cli import main\n"
            f"rc = main(['predict', '--checkpoint', {str(exported)!r}, {str(SAMPLES / 'mitbih_beats.csv')!r}, '--json'])\n"
            f"rc += main(['predict', '--checkpoint', {str(exported)!r}, '--record', {str(REC_208)!r}, '--out', {str(tmp_path)!r}])\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'torch']\n"
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout[:done.stdout.index("\n208 (lead")])["beats"]
    expected = Predictor.from_checkpoint(quick_run / "best.pt", "cpu").predict(read_beats_file(SAMPLES / "mitbih_beats.csv")[0])
    assert [r["name"] for r in rows] == expected.tolist()
    assert (tmp_path / "beats.csv").exists() and (tmp_path / "strip.png").exists()


def _foreign_model(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 187])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 187])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])), path)


def _other_task(exported, path):
    model = onnx.load(exported)
    for p in model.metadata_props:
        meta = json.loads(p.value)
        p.value = json.dumps(meta | {"task": "ptbdb", "class_names": ["normal", "MI"]})
    onnx.save(model, path)


@pytest.mark.parametrize("case, expect", [
    ("random bytes", "is not a readable ONNX model"),
    ("truncated", "is not a readable ONNX model"),
    ("foreign model", "without ecgnet metadata"),
    ("other task's metadata", "does not match its ecgnet metadata"),
    ("missing", "not found"),
])
def test_bad_onnx_files_are_one_line_exit_2(exported, tmp_path, capsys, case, expect):
    path = tmp_path / "model.onnx"
    if case == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif case == "truncated":
        path.write_bytes(exported.read_bytes()[:3000])
    elif case == "foreign model":
        _foreign_model(path)
    elif case == "other task's metadata":
        _other_task(exported, path)
    code = ecgnet("predict", "--checkpoint", path, SAMPLES / "mitbih_beats.csv")
    err = capsys.readouterr().err
    assert code == 2 and expect in err and err.count("\n") == 1, err


@pytest.mark.parametrize("args, expect", [
    (["predict", "--backend", "onnxruntime", "--checkpoint", "best.pt", "x.csv"], "--backend onnxruntime runs .onnx files"),
    (["predict", "--backend", "torch", "--checkpoint", "m.onnx", "x.csv"], "is an ONNX model: run it with --backend onnxruntime"),
    (["export", "--checkpoint", "mitbih"], "nothing to export"),
    (["export", "--checkpoint", "mitbih", "--onnx", "model.bin"], "must end in .onnx"),
    (["export", "--checkpoint", "mitbih", "--onnx", "no/such/dir/m.onnx"], "does not exist"),
])
def test_backend_and_export_misuse_is_one_line_exit_2(tmp_path, monkeypatch, capsys, args, expect):
    monkeypatch.chdir(tmp_path)
    code = ecgnet(*args)
    err = capsys.readouterr().err
    assert code == 2 and expect in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_shipped_models_export_with_parity_including_rhythm(tmp_path):
    from ecgnet.serving.labelling import label_record
    from ecgnet.signals.records import read_recording
    recording = read_recording(REC_208)
    for name in ("mitbih-rr", "ptbdb-mi"):
        assert ecgnet("export", "--checkpoint", name, "--onnx", tmp_path / f"{name}.onnx") == 0
        onnx_result = label_record(OnnxPredictor(tmp_path / f"{name}.onnx"), recording)
        torch_result = label_record(Predictor.from_checkpoint(name, "cpu", fast=False), recording)
        columns = [c for c in torch_result["table"] if c.startswith("p_")]
        gap = max(np.abs(onnx_result["table"][c] - torch_result["table"][c]).max() for c in columns)
        assert gap <= 1e-5 and (onnx_result["table"]["name"] == torch_result["table"]["name"]).all()
