"""The models shipped in ecgnet/weights: usable by name, checked by SHA-256, reproducing their recorded figures."""
import json
import shutil

import numpy as np
import pytest
from helpers import FIXTURES, SAMPLES, ecgnet

from ecgnet.constants import DEFAULT_MODEL, DEFAULT_RECORD_MODEL
from ecgnet.models.pretrained import WEIGHTS_DIR, load_model_file, resolve_checkpoint, shipped_models
from ecgnet.models.registry import is_record_model
from ecgnet.serving.batch import load_classifier
from ecgnet.serving.inference import Predictor
from ecgnet.serving.shipping import bundled_figures, bundled_verdicts

SHIPPED = ("mitbih", "mitbih-rr", "mitbih-rr-ensemble", "ptbdb-mi")


def networks(model_args: dict) -> int:
    """How many networks a model's weights hold: a combined model ships each member's (cards written by ecgnet <= 0.3
    name an ensemble's members by their number, a pooled model's by 'experts')."""
    parts = model_args.get("members") or model_args.get("experts")
    if parts:
        return sum(networks(m["model_args"]) for m in parts)
    return model_args.get("n_members", 1)


def test_the_shipped_models_are_all_there_with_cards():
    models = shipped_models()
    assert set(SHIPPED) <= set(models) and {DEFAULT_MODEL, DEFAULT_RECORD_MODEL} <= set(models)
    for name, card in models.items():
        if is_record_model(card["model_name"]):
            continue  # test_the_record_model_reproduces_its_bundled_verdicts
        assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size < 250_000 * networks(card["model_args"])
        for key in ("sha256", "task", "class_names", "model_args", "recipe", "calibration", "config", "figures", "training_data", "limits"):
            assert key in card, (name, key)
        assert card["calibration"]["temperature"] > 0 and 0 <= card["figures"]["test"]["ece"] < 0.5
    default = models[DEFAULT_MODEL]["figures"]["test"]
    assert default["accuracy"] > 0.98 and default["ece"] < default["ece_uncalibrated"]  # calibration helps the default model


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_reproduce_their_recorded_figures(name):
    card = shipped_models()[name]
    again = bundled_figures(Predictor.from_checkpoint(name, "cpu"))
    recorded = card["figures"]["bundled"]
    assert again.keys() == recorded.keys()
    for key, value in recorded.items():
        if isinstance(value, float):
            assert again[key] == pytest.approx(value, abs=1e-5), key
        else:
            assert again[key] == value, key


def test_the_record_model_reproduces_its_bundled_verdicts():
    card = shipped_models()["ptbxl-mi"]
    assert card["model_name"] == "lead_pool" and set(card["calibration"]["thresholds"]) == {"12 leads", "lead II"}
    twelve = card["figures"]["12 leads"]["test"]
    assert twelve["record"]["roc_auc"] >= 0.9 and twelve["record"]["sensitivity"] >= 0.8 and twelve["record"]["specificity"] >= 0.85
    again = bundled_verdicts(load_classifier("ptbxl-mi"))
    recorded = card["figures"]["bundled"]
    assert again["record"] == recorded["record"]
    for leads in ("12 leads", "lead II"):
        assert again[leads]["record_class"] == recorded[leads]["record_class"]
        assert again[leads]["p_MI"] == pytest.approx(recorded[leads]["p_MI"], abs=1e-5)


def test_models_command_lists_them(capsys):
    assert ecgnet("models") == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert f"\n{name} " in out
    assert ecgnet("models", "--json") == 0
    assert set(SHIPPED) <= set(json.loads(capsys.readouterr().out))


def test_predict_needs_no_checkpoint(tmp_path, capsys):
    assert ecgnet("predict", SAMPLES / "mitbih_beats.csv") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"model: {DEFAULT_MODEL}\n")
    correct, total = (int(v) for v in out.split("\n\n")[-1].split()[0].split("/"))
    assert total == 10 and correct >= 8  # the two S samples are hard for the beat-only model
    assert ecgnet("predict", "--record", FIXTURES / "mitdb" / "208", "--out", tmp_path) == 0
    assert f"model {DEFAULT_RECORD_MODEL}:" in capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == DEFAULT_RECORD_MODEL and summary["per_class"]["V"] > 0


def test_safetensors_export_round_trips(quick_run, tmp_path):
    assert ecgnet("export", "--checkpoint", quick_run / "best.pt", "--safetensors", tmp_path / "mine") == 0
    beats = np.random.default_rng(0).random((70, 187), dtype=np.float32)
    a = Predictor.from_checkpoint(tmp_path / "mine.safetensors", "cpu").predict_proba(beats)
    b = Predictor.from_checkpoint(quick_run / "best.pt", "cpu").predict_proba(beats)
    np.testing.assert_array_equal(a, b)


def test_transfer_can_start_from_a_shipped_trunk():
    import torch

    from ecgnet.config import Config
    from ecgnet.training.trainer import build_model
    model, source = build_model(Config(task="ptbdb", mode="frozen", pretrained="mitbih"), 2, torch.device("cpu"))
    trunk = resolve_checkpoint("mitbih")["model"]
    assert torch.equal(model.state_dict()["stem.weight"], trunk["stem.weight"]) and source["path"] == "mitbih"


def _copy(name, tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path / f"{name}.safetensors"


@pytest.mark.parametrize("case, expect", [
    ("flipped byte", "is corrupt: its SHA-256 does not match"),
    ("truncated", "is corrupt: its SHA-256 does not match"),
    ("card missing", "its card mitbih.json is missing"),
    ("card not json", "is unreadable (JSONDecodeError)"),
    ("unknown name", "unknown model 'mitbhi': shipped models are"),
])
def test_bad_model_files_are_one_line_exit_2(tmp_path, capsys, case, expect):
    path = _copy("mitbih", tmp_path)
    if case == "flipped byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    elif case == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif case == "card missing":
        path.with_suffix(".json").unlink()
    elif case == "card not json":
        path.with_suffix(".json").write_text("{not json")
    spec = "mitbhi" if case == "unknown name" else path
    code = ecgnet("predict", "--checkpoint", spec, SAMPLES / "mitbih_beats.csv")
    err = capsys.readouterr().err
    assert code == 2 and expect in err and err.count("\n") == 1, err
    if case == "flipped byte":
        with pytest.raises(Exception, match="SHA-256"):
            load_model_file(path)
