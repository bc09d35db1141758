"""Transfer learning: the MIT-BIH trunk reused on PTB beats (frozen / finetune / scratch)."""
import pytest
import torch
from helpers import ROOT, SAMPLES, ecgnet, train_small

from ecgnet.config import Config
from ecgnet.data.datasets import BUNDLED_DIR
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import load_checkpoint, save_checkpoint
from ecgnet.serving.scoring import evaluate
from ecgnet.training.trainer import build_model

pytestmark = pytest.mark.slow


def trunk(state):
    return {k: v for k, v in state.items() if k.startswith(("stem.", "blocks."))}


def head(state):
    return {k: v for k, v in state.items() if k.startswith("head.")}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def pretrained(trained_run):
    return trained_run / "best.pt"


def test_frozen_trunk_is_bit_identical_and_head_learns(pretrained, tmp_path):
    run = tmp_path / "frozen"
    overrides = dict(task="ptbdb", mode="frozen", pretrained=str(pretrained), epochs=3, augment=False)
    torch.manual_seed(0)
    initial, _ = build_model(Config(**overrides), 2, torch.device("cpu"))
    train_small(run, **overrides)
    final = load_checkpoint(run / "last.pt")
    source = load_checkpoint(pretrained)["model"]
    assert same(trunk(final["model"]), trunk(source))
    assert not same(head(final["model"]), head(initial.state_dict()))
    assert final["class_names"] == ["normal", "MI"] and final["pretrained"]["task"] == "mitbih"
    metrics = evaluate(run / "best.pt", BUNDLED_DIR, "cpu")
    assert 0.5 < metrics["roc_auc"] <= 1 and set(metrics["per_class"]) == {"normal", "MI"}
    assert metrics["n"] == len(final["split"]["test_indices"]) == 181


def test_finetune_moves_the_trunk_and_scratch_ignores_it(pretrained, tmp_path):
    source = trunk(load_checkpoint(pretrained)["model"])
    train_small(tmp_path / "ft", task="ptbdb", mode="finetune", pretrained=str(pretrained), epochs=1, augment=False)
    assert not same(trunk(load_checkpoint(tmp_path / "ft" / "last.pt")["model"]), source)
    train_small(tmp_path / "sc", task="ptbdb", mode="scratch", epochs=1, augment=False)
    scratch = load_checkpoint(tmp_path / "sc" / "last.pt")
    assert not same(trunk(scratch["model"]), source) and scratch["pretrained"] is None


def test_bad_pretrained_checkpoints(pretrained, tmp_path):
    with pytest.raises(EcgnetError, match="not found"):
        build_model(Config(task="ptbdb", mode="frozen", pretrained=str(tmp_path / "none.pt")), 2, torch.device("cpu"))
    train_small(tmp_path / "ptb", task="ptbdb", epochs=1, augment=False)
    with pytest.raises(EcgnetError, match="is a 'ptbdb' model, not an MIT-BIH trunk"):
        build_model(Config(task="ptbdb", mode="frozen", pretrained=str(tmp_path / "ptb" / "best.pt")), 2, torch.device("cpu"))
    ckpt = load_checkpoint(pretrained)
    narrow = ckpt | {"model_args": ckpt["model_args"] | {"channels": 16}}
    save_checkpoint(tmp_path / "narrow.pt", narrow)  # a valid checksum: the architecture check is what refuses it
    with pytest.raises(EcgnetError, match="channels=16, this model has 32; the architectures do not match"):
        build_model(Config(task="ptbdb", mode="frozen", pretrained=str(tmp_path / "narrow.pt")), 2, torch.device("cpu"))


def test_transfer_cli_and_predict_use_checkpoint_class_names(pretrained, tmp_path, capsys):
    code = ecgnet("train", "--config", ROOT / "config" / "ptbdb_transfer.json", "--pretrained", pretrained,
                  "--data-dir", BUNDLED_DIR, "--log-dir", tmp_path, "--run-name", "t", "--epochs", "2", "--set", "num_threads=1")
    out = capsys.readouterr().out
    assert code == 0 and "ROC AUC" in out and "MI" in out
    code = ecgnet("predict", "--checkpoint", tmp_path / "t" / "best.pt", SAMPLES / "ptbdb_beats.csv")
    out = capsys.readouterr().out
    assert code == 0 and out.count(" normal ") + out.count(" MI ") >= 6
