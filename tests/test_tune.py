"""ecgnet tune: Optuna trials on the validation split (the test file is never opened), pruning, outputs,
a study killed mid-trial that resumes, two workers sharing one study, and bad search spaces."""
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from helpers import ENV, ROOT, ecgnet

from ecgnet.config import Config
from ecgnet.data.datasets import BUNDLED_DIR
from ecgnet.errors import EcgnetError
from ecgnet.training.tune import base_values, history_figure, load_space, open_study, tune

SPACE = {"lr": {"type": "categorical", "choices": [1e-7, 0.003]}, "ema_decay": {"type": "categorical", "choices": [0.0, 0.99]}}


@pytest.fixture
def data(tmp_path):
    """The bundled training beats, and a 'test file' that cannot be opened: tune must never try."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(BUNDLED_DIR / "mitbih_train.csv.xz", folder)
    (folder / "mitbih_test.csv").mkdir()  # a folder: opening it as a file fails
    return folder


def base(data, tmp_path, **overrides) -> Config:
    return Config(**({"data_dir": str(data), "log_dir": str(tmp_path / "log"), "epochs": 3, "batch_size": 64, "num_threads": 1,
                      "device": "cpu", "patience": 0} | overrides)).validate()


@pytest.mark.slow
def test_tune_prunes_and_writes_its_outputs_without_the_test_file(data, tmp_path):
    cfg = base(data, tmp_path)
    study = open_study("t", tmp_path / "log" / "tune", 0)
    for lr, ema in ((0.003, 0.0), (0.003, 0.99), (1e-7, 0.0), (1e-7, 0.99)):  # two that learn, two that cannot: pruned
        study.enqueue_trial({"lr": lr, "ema_decay": ema})
    study = tune(cfg, SPACE, "t", n_trials=4)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == 2 and states.count(optuna.trial.TrialState.COMPLETE) == 2
    out = tmp_path / "log" / "tune" / "t"
    best = json.loads((out / "best_config.json").read_text())
    assert best["lr"] == 0.003 and best["data_dir"] == str(data)
    for name in ("history.png", "importance.png", "trials.csv"):
        assert (out / name).stat().st_size > 0
    assert len(list(out.glob("trial-000*/events.out.tfevents.*"))) >= 4  # every trial, pruned ones too, is a run


def launch(data, tmp_path, *extra) -> subprocess.Popen:
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    return subprocess.Popen([sys.executable, "-m", "ecgnet", "tune", "--study", "s", "--space", space, "--data-dir", data,
                             "--epochs", "2", "--set", f"log_dir={tmp_path / 'log'}", "--set", "batch_size=64",
                             "--set", "num_threads=1", "--set", "patience=0", *extra], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_killed_study_resumes_and_two_workers_share_it(data, tmp_path):
    first = launch(data, tmp_path, "--n-trials", "3")
    runs = tmp_path / "log" / "tune" / "s"
    deadline = time.time() + 120
    while not list(runs.glob("trial-0001")) and time.time() < deadline:  # the second trial is under way
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers = [launch(data, tmp_path, "--n-trials", "4") for _ in range(2)]
    for w in workers:
        out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'log' / 'tune' / 's.db'}")
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) >= 4
    assert len({t.user_attrs["worker"] for t in finished}) >= 2  # both workers (and maybe the killed one) ran trials


@pytest.mark.parametrize("space, expect", [
    ({"learning_rate": {"type": "float", "low": 0.1, "high": 1}}, "not a config key"),
    ({"lr": {"type": "uniform", "low": 0.1, "high": 1}}, "needs \"type\""),
    ({"lr": {"type": "float", "low": 1, "high": 0.1}}, "numbers \"low\" < \"high\""),
    ({"batch_size": {"type": "categorical", "choices": []}}, "non-empty \"choices\""),
    ([], "expected a JSON object"),
])
def test_bad_search_spaces_are_refused_in_one_line(tmp_path, space, expect):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    with pytest.raises(EcgnetError, match=expect):
        load_space(path)


def test_tune_cli_errors_exit_2(tmp_path, capsys):
    assert ecgnet("tune", "--study", "x", "--space", tmp_path / "missing.json") == 2
    assert ecgnet("tune", "--study", "x", "--n-trials", "0") == 2
    err = capsys.readouterr().err
    assert "search space" in err and "--n-trials must be at least 1" in err and "Traceback" not in err


def test_history_leaves_out_trials_without_a_final_score():
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial
    study = optuna.create_study(direction="maximize", study_name="history")
    space = {"lr": FloatDistribution(1e-4, 1e-2)}
    for state, value, steps in [(TrialState.COMPLETE, 0.8, {0: 0.7, 1: 0.8}), (TrialState.PRUNED, None, {0: 0.6}),
                                (TrialState.FAIL, None, {0: 0.95})]:  # a killed trial: a high intermediate, no final score
        study.add_trial(create_trial(state=state, value=value, params={"lr": 1e-3}, distributions=space, intermediate_values=steps))
    ax = history_figure(study).axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert sorted(points[:, 1].tolist()) == [0.6, 0.8]
    assert max(ax.lines[0].get_ydata()) == 0.8


def test_the_base_config_is_the_first_trial_where_the_space_allows():
    space = load_space(ROOT / "config" / "tune_space.json")
    defaults = Config()
    assert base_values(defaults, space) == {key: getattr(defaults, key) for key in space}  # all eight searched keys
    outside = base_values(Config(lr=0.5, batch_size=100), space)
    assert "lr" not in outside and "batch_size" not in outside and outside["ema_decay"] == defaults.ema_decay


def test_no_trial_is_pruned_on_its_first_epochs(tmp_path):
    study = open_study("warmup", tmp_path, 0, epochs=10)
    for _ in range(2):
        trial = study.ask()
        for epoch in (1, 2, 3):
            trial.report(0.9, epoch)
        study.tell(trial, 0.9)
    slow = study.ask()
    for epoch in (1, 2):
        slow.report(0.1, epoch)
        assert not slow.should_prune()  # epochs 1-2 of 10: too early to judge
    slow.report(0.1, 3)
    assert slow.should_prune()
