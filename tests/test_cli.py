"""The CLIs end to end in a temp dir, their error handling, interruption and exact resume."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import ENV, ROOT, SAMPLES, ecgnet, run_script

from ecgnet.cli import run_command
from ecgnet.data.datasets import BUNDLED_DIR
from ecgnet.models.checkpoint import load_checkpoint


def run(script, *args, cwd, check=True):
    return run_script([script, *args], cwd=cwd, check=check)


@pytest.mark.slow
def test_train_test_predict_end_to_end(tmp_path):
    train = run("train.py", "--config", ROOT / "config" / "config.json", "--data-dir", tmp_path / "nothing-here",
                "--log-dir", tmp_path / "log", "--run-name", "e2e", "--epochs", "2", "--batch-size", "64",
                "--set", "num_threads=1", cwd=tmp_path)
    assert "using the small bundled subset" in train.stderr and "kaggle.com" in train.stderr
    assert "Confusion matrix (counts)" in train.stdout and "macro-F1" in train.stdout
    run_dir = tmp_path / "log" / "e2e"
    for name in ("best.pt", "last.pt", "config.json", "metrics.json", "confusion_matrix.png"):
        assert (run_dir / name).exists(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2

    test = run("test.py", "--checkpoint", run_dir / "best.pt", cwd=tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n"] == 650 and f"accuracy {metrics['accuracy']:.4f}" in test.stdout
    for name in "NSVFQ":
        assert name in metrics["per_class"]

    pred = run_script(["-m", "ecgnet", "predict", "--checkpoint", run_dir / "best.pt", SAMPLES / "mitbih_beats.csv",
                       SAMPLES / "mitbih_beats.npy", SAMPLES / "mitbih_beats.mat", "--json"], cwd=tmp_path)
    rows = json.loads(pred.stdout)["beats"]
    assert len(rows) == 30 and sum("true_class" in r for r in rows) == 10
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)

    again = run("train.py", "--log-dir", tmp_path / "log", "--run-name", "e2e", "--epochs", "1", cwd=tmp_path, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("command, args, expect", [
    ("train", ["--config", "missing.json"], "config file missing.json not found"),
    ("train", ["--set", "epoch=3"], "unknown key 'epoch'; did you mean 'epochs'?"),
    ("train", ["--lr", "0"], "key 'lr' must be > 0"),
    ("train", ["--batch-size", "0"], "key 'batch_size' must be >= 1"),
    ("train", ["--device", "tpu"], "key 'device' is 'tpu'"),
    ("train", ["--resume", "log/no-such-run"], "no-such-run/last.pt not found"),
    ("test", ["--checkpoint", "missing.pt"], "checkpoint missing.pt not found"),
    ("predict", ["--checkpoint", "missing.pt", "x.csv"], "checkpoint missing.pt not found"),
    ("predict", ["--checkpoint", "missing.pt"], "nothing to predict: give beat files, a recording with --record PATH, or --stream"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch, command, args, expect):
    monkeypatch.chdir(tmp_path)
    for run_it in (lambda: ecgnet(command, *args), lambda: run_command(command, args, prog=f"python {command}.py")):
        code = run_it()
        err = capsys.readouterr().err
        assert code == 2 and expect in err, err
        assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", ["train", "test", "predict", "prepare", "export", "models"])
def test_every_subcommand_documents_itself(capsys, command):
    with pytest.raises(SystemExit) as done:
        ecgnet(command, "--help")
    out = capsys.readouterr().out
    assert done.value.code == 0 and f"usage: ecgnet {command}" in out and "--debug" in out


@pytest.mark.parametrize("content, expect", [
    ("0.1,0.2,0.3\n", "3 values, expected 187 (187 samples) or 188"),
    (",".join(["0.5"] * 186 + ["nan"]) + "\n", "value nan is not finite"),
    (",".join(["0.5"] * 187 + ["2.5"]) + "\n", "last column 2.5 is not an integer class label"),
    ("", "file is empty"),
])
def test_predict_refuses_bad_beats(quick_run, tmp_path, capsys, content, expect):
    path = tmp_path / "beats.csv"
    path.write_text(content)
    code = ecgnet("predict", "--checkpoint", quick_run / "best.pt", path)
    err = capsys.readouterr().err
    assert code == 2 and expect in err, err


def wait_for(predicate, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def epoch_of(path):
    try:
        return load_checkpoint(path)["epoch"]
    except Exception:
        return 0


TRAIN_ARGS = ["--data-dir", BUNDLED_DIR, "--epochs", "3", "--batch-size", "16", "--set", "num_threads=1",
              "--set", "patience=0", "--no-test"]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    """A run killed with SIGKILL after epoch 1 and resumed ends exactly like an uninterrupted run."""
    run("train.py", *TRAIN_ARGS, "--log-dir", tmp_path, "--run-name", "straight", cwd=tmp_path)
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, TRAIN_ARGS), "--log-dir", tmp_path,
                             "--run-name", "killed"], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "last.pt"
    assert wait_for(lambda: last.exists() and epoch_of(last) >= 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert epoch_of(last) < 3, "the run finished before it could be killed"
    run("train.py", "--resume", tmp_path / "killed", cwd=tmp_path)
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(last)
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["val_metrics"]["macro_f1"] == b["val_metrics"]["macro_f1"]


@pytest.mark.slow
def test_sigterm_saves_and_tells_how_to_resume(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, TRAIN_ARGS), "--epochs", "50",
                             "--log-dir", tmp_path, "--run-name", "term"], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "term" / "last.pt"
    assert wait_for(lambda: last.exists() and epoch_of(last) >= 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert f"Resume with: python train.py --resume {tmp_path / 'term'}" in err
    assert load_checkpoint(last)["epoch"] >= 1


@pytest.mark.slow
def test_debug_flag_shows_the_traceback(tmp_path):
    proc = run("test.py", "--checkpoint", tmp_path / "missing.pt", "--debug", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "EcgnetError" in proc.stderr


@pytest.mark.slow
def test_overwrite_and_extend_on_resume(tmp_path):
    """--overwrite reuses a run dir; --resume may extend epochs but not change other keys."""
    base = ["--data-dir", BUNDLED_DIR, "--batch-size", "64", "--set", "num_threads=1", "--no-test", "--log-dir", tmp_path]
    run("train.py", *base, "--run-name", "r", "--epochs", "1", cwd=tmp_path)
    run("train.py", *base, "--run-name", "r", "--epochs", "1", "--overwrite", cwd=tmp_path)
    run("train.py", "--resume", tmp_path / "r", "--epochs", "2", cwd=tmp_path)
    assert load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 2
    bad = run("train.py", "--resume", tmp_path / "r", "--lr", "0.1", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "only data_dir, device, epochs, store may be changed, not lr" in bad.stderr
