"""Answers at once: the CLI imports only what a command uses, shipped models run on ONNX Runtime by default
(the same answers as PyTorch), and the small-file CSV reader equals the pandas one."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import ENV, FIXTURES, ROOT, SAMPLES, ecgnet

from ecgnet.cards import WEIGHTS_DIR, read_card, shipped_onnx
from ecgnet.data.tables import _read_small_table
from ecgnet.serving import batch

HEAVY = ("torch", "scipy", "pandas", "matplotlib", "sklearn", "tensorboard", "neurokit2", "sleepecg", "wfdb", "streamlit")
BLOCK_ONNXRUNTIME = ("class NoOnnx:\n"  # a machine without onnxruntime
                     "    def find_spec(self, name, path=None, target=None):\n"
                     "        if name.split('.')[0] == 'onnxruntime': raise ImportError('no onnxruntime here')\n"
                     "sys.meta_path.insert(0, NoOnnx())\n")


def run_cli(args: list, before: str = "") -> tuple[dict, set]:
    """``ecgnet ARGS --json`` in a fresh interpreter: its JSON output and the top-level modules it imported."""
    code = ("import sys, json\n" + before + "from ecgnet.cli import main\n"
            f"rc = main({[str(a) for a in args]!r})\n"
            "print('\\nMODULES ' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out, _, modules = done.stdout.rpartition("\nMODULES ")
    return (json.loads(out) if out.strip().startswith("{") else {}), set(json.loads(modules))


def test_help_imports_nothing_heavy():
    code = "import sys\nfrom ecgnet.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert "predict" in done.stdout and "train" in done.stdout
    loaded = {m.split(".")[0] for m in eval(done.stdout[done.stdout.rindex("["):])}
    assert not loaded & (set(HEAVY) | {"numpy", "onnxruntime"}) and "ecgnet" in loaded


def test_a_beat_file_is_labelled_without_torch_scipy_or_pandas_and_as_torch_does():
    fast, modules = run_cli(["predict", SAMPLES / "mitbih_beats.csv", "--json"])
    assert not modules & set(HEAVY), modules & set(HEAVY)
    plain, modules = run_cli(["predict", "--backend", "torch", SAMPLES / "mitbih_beats.csv", "--json"])
    assert "torch" in modules and not modules & {"pandas", "sklearn", "matplotlib", "scipy"}
    assert fast["model"] == plain["model"] == "mitbih"
    for a, b in zip(fast["beats"], plain["beats"]):
        assert a["name"] == b["name"] and a["probability"] == pytest.approx(b["probability"], abs=1e-5)


def test_without_onnxruntime_the_default_runs_torch_with_the_same_labels():
    fast, _ = run_cli(["predict", SAMPLES / "mitbih_beats.csv", "--json"])
    fallback, modules = run_cli(["predict", SAMPLES / "mitbih_beats.csv", "--json"], before=BLOCK_ONNXRUNTIME)
    assert "torch" in modules and "onnxruntime" not in modules
    assert [r["name"] for r in fallback["beats"]] == [r["name"] for r in fast["beats"]]


def test_prediction_does_not_set_up_training_determinism():
    _, modules = run_cli(["predict", "--backend", "torch", SAMPLES / "mitbih_beats.csv", "--json"])
    code = ("import sys\nfrom ecgnet.cli import main\n"
            f"main(['predict', '--backend', 'torch', {str(SAMPLES / 'mitbih_beats.csv')!r}])\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]


@pytest.mark.parametrize("name", ["mitbih", "mitbih-rr", "mitbih-rr-ensemble", "ptbdb-mi"])
def test_shipped_beat_models_ship_a_checked_onnx_graph(name):
    path = shipped_onnx(name)
    assert path is not None and path.parent == WEIGHTS_DIR and "onnx_sha256" in read_card(WEIGHTS_DIR / name)
    assert batch.choose_backend(name) == ("onnxruntime", str(path))
    assert batch.choose_backend(name, "torch") == ("torch", name)
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(path).graph
    assert not any(node.metadata_props or node.doc_string for node in graph.node)  # no stack traces of the exporting machine


def test_a_corrupt_shipped_graph_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    for suffix in (".json", ".safetensors", ".onnx"):
        shutil.copy(WEIGHTS_DIR / f"mitbih{suffix}", tmp_path / f"mitbih{suffix}")
    (tmp_path / "mitbih.onnx").write_bytes((tmp_path / "mitbih.onnx").read_bytes()[:-10] + b"0123456789")
    monkeypatch.setattr("ecgnet.cards.WEIGHTS_DIR", tmp_path)
    assert ecgnet("predict", SAMPLES / "mitbih_beats.csv") == 2
    err = capsys.readouterr().err
    assert "mitbih.onnx is corrupt" in err and "--backend torch" in err and err.count("\n") == 1


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.csv")) + sorted(FIXTURES.rglob("*.csv")))
def test_the_small_csv_reader_equals_pandas(path):
    small = _read_small_table(path, (187, 188))
    if small is None:  # not a beat table (e.g. a database index): pandas reads it, and says what is wrong
        return
    assert np.array_equal(small, pd.read_csv(path, header=None, dtype=np.float64, engine="c").to_numpy())


@pytest.mark.parametrize("text", ["1,2\n3\n", "a,b\n", "1,nan\n", "", "1,2,3\n", "1,2\n\n"])
def test_the_small_csv_reader_leaves_bad_tables_to_pandas(tmp_path, text):
    path = tmp_path / "x.csv"
    path.write_text(text)
    assert _read_small_table(path, (2,)) is None
    good = tmp_path / "good.csv"
    good.write_text("1,2\n0.5,1e-3\n")
    assert np.array_equal(_read_small_table(good, (2,)), [[1, 2], [0.5, 1e-3]])
