"""The model registry: every model learns on real beats, rebuilds from its checkpoint, splits into trunk and
head, and transfers its trunk; checkpoints of one model are refused as another's trunk."""
import pytest
import torch
import torch.nn.functional as F
from helpers import train_small

from ecgnet.constants import TASKS
from ecgnet.data.datasets import BUNDLED_DIR, load_splits
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import (
    CHECKPOINT_KIND,
    FORMAT_VERSION,
    load_checkpoint,
    load_trunk,
    model_from_checkpoint,
    save_checkpoint,
)
from ecgnet.models.model import BeatClassifier, count_parameters, freeze_trunk
from ecgnet.models.registry import create_model, list_models

PLAIN = [name for name in list_models() if not name.startswith("kachuee_rr")]  # rhythm models: tests/test_rhythm.py, test_template.py


@pytest.fixture(scope="module")
def beats():
    train = load_splits(TASKS["mitbih"], BUNDLED_DIR, 0.1, 0.2, 0).train
    return train.x[:256], train.y[:256]


def checkpoint_of(name: str, model: BeatClassifier, task: str = "mitbih") -> dict:
    return {"kind": CHECKPOINT_KIND, "format_version": FORMAT_VERSION, "task": task, "model_name": name, "model_args": model.model_args, "model": model.state_dict(),
            "class_names": list(TASKS[task].class_names)}


@pytest.mark.slow
@pytest.mark.parametrize("name", PLAIN)
def test_each_model_learns_and_rebuilds_from_its_checkpoint(name, beats, tmp_path):
    torch.manual_seed(0)
    x, y = beats
    model = create_model(name, 5)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    save_checkpoint(tmp_path / "m.pt", checkpoint_of(name, model))
    rebuilt = model_from_checkpoint(load_checkpoint(tmp_path / "m.pt"))
    assert type(rebuilt) is type(model) and rebuilt.model_args == model.model_args
    model.eval(), rebuilt.eval()
    assert torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize("name", PLAIN)
def test_trunk_head_split_and_transfer_to_two_classes(name, beats):
    x, _ = beats
    source = create_model(name, 5).eval()
    assert torch.equal(source(x), source.forward_head(source.forward_features(x)))
    target = create_model(name, 2)
    load_trunk(target, checkpoint_of(name, source), "source")
    target.eval()
    assert torch.equal(target.forward_features(x), source.forward_features(x))
    freeze_trunk(target)
    assert count_parameters(target, trainable_only=True) == sum(p.numel() for p in target.head.parameters())
    target.reset_classifier(3)
    assert target(x).shape == (len(x), 3) and target.model_args["n_classes"] == 3


def test_a_trunk_of_another_model_is_refused():
    source = create_model("cnn_lstm", 5)
    with pytest.raises(EcgnetError, match="is a 'cnn_lstm' model; set 'model' to match it"):
        load_trunk(create_model("gru", 2), checkpoint_of("cnn_lstm", source), "src")
    with pytest.raises(EcgnetError, match="has width=64, this model has 32"):
        load_trunk(create_model("cnn_bilstm_attn", 2, width=32), checkpoint_of("cnn_bilstm_attn", create_model("cnn_bilstm_attn", 5)), "src")
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        create_model("resnet", 5)


@pytest.mark.slow
def test_a_registry_model_trains_through_the_trainer(tmp_path):
    summary = train_small(tmp_path / "lstm", model="cnn_lstm", epochs=2)
    best = load_checkpoint(tmp_path / "lstm" / "best.pt")
    assert best["model_name"] == "cnn_lstm" and best["calibration"]["temperature"] > 0
    assert summary["history"][-1]["train_loss"] < summary["history"][0]["train_loss"]


def test_models_register_themselves_and_docs_list_every_one():
    from helpers import ROOT

    from ecgnet.models import is_assembled, is_record_model, register_model
    from ecgnet.models.registry import _REGISTRY
    assert {"kachuee", "kachuee_rr", "kachuee_rrt", "kachuee_rrt_small", "cnn_lstm", "gru", "cnn_bilstm_attn"} == set(list_models())
    assert is_assembled("combined") and is_assembled("linear_rr") and not is_assembled("kachuee")
    assert list_models("record") == ["lead_pool"] and is_record_model("lead_pool") and not is_record_model("kachuee")
    table = (ROOT / "docs" / "models.md").read_text()
    assert all(f"| `{name}`" in table for name in _REGISTRY), [n for n in _REGISTRY if f"| `{n}`" not in table]
    with pytest.raises(ValueError, match="registered twice"):
        register_model("kachuee")(type("Other", (), {}))


def test_the_registry_imports_no_model():
    import ast

    from helpers import ROOT
    tree = ast.parse((ROOT / "ecgnet" / "models" / "registry.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and n.module not in ("__future__", "typing")]
