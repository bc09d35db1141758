import json

import pytest
from helpers import ROOT

from ecgnet.config import Config, config_from_dict, config_markdown, load_config, parse_override
from ecgnet.errors import EcgnetError
from ecgnet.training.tune import load_space


def test_shipped_configs_are_valid_and_documented():
    for path in (ROOT / "config").glob("*.json"):
        if path.name == "tune_space.json":
            load_space(path)  # an ecgnet tune search space, not a config
        else:
            load_config(path)
    readme = (ROOT / "config" / "README.md").read_text()
    assert config_markdown() in readme, "config/README.md is stale: regenerate it with python -m ecgnet.config"


def test_default_config_file_matches_defaults():
    assert load_config(ROOT / "config" / "config.json") == Config()


@pytest.mark.parametrize("text, expect", [
    ('{"epochs": 3,\n "batch_size": 64,,}', "invalid JSON at line 2, column 19"),
    ('[1, 2]', "expected a JSON object"),
    ('{"epoch": 3}', "unknown key 'epoch'; did you mean 'epochs'?"),
    ('{"learning_rate": 0.1}', "unknown key 'learning_rate'"),
    ('{"epochs": "ten"}', "key 'epochs' must be of type int"),
    ('{"augment": 1}', "key 'augment' must be of type bool"),
    ('{"lr": 0}', "key 'lr' must be > 0"),
    ('{"lr": -0.001}', "key 'lr' must be > 0"),
    ('{"batch_size": 0}', "key 'batch_size' must be >= 1"),
    ('{"val_fraction": 1.0}', "key 'val_fraction' must be between 0 and 1"),
    ('{"patience": -1}', "key 'patience' must be >= 0"),
    ('{"device": "tpu"}', "key 'device' is 'tpu'; choose one of auto, cpu, cuda, mps"),
    ('{"imbalance": "smote"}', "key 'imbalance' is 'smote'"),
    ('{"class_weight_cap": 0.5}', "key 'class_weight_cap' must be 0 (no cap) or >= 1"),
    ('{"focal_gamma": -1}', "key 'focal_gamma' must be in [0, 10]"),
    ('{"mode": "frozen"}', "key 'pretrained' is empty but mode is 'frozen'"),
    ('{"betas": [0.9]}', "key 'betas' must be two numbers"),
])
def test_bad_config_files(tmp_path, text, expect):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(EcgnetError) as err:
        load_config(path)
    assert expect in str(err.value) and str(path) in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(EcgnetError, match="config file .*nope.json not found"):
        load_config(tmp_path / "nope.json")


def test_overrides():
    assert parse_override("patience=3") == ("patience", 3)
    assert parse_override("data_dir=/x/y") == ("data_dir", "/x/y")
    with pytest.raises(EcgnetError, match="unknown key 'patiense'; did you mean 'patience'"):
        parse_override("patiense=3")
    with pytest.raises(EcgnetError, match="expected KEY=VALUE"):
        parse_override("patience")
    cfg = config_from_dict({"epochs": 2}, base=Config(lr=0.01))
    assert cfg.epochs == 2 and cfg.lr == 0.01
    assert json.loads(json.dumps(cfg.to_dict()))["epochs"] == 2
