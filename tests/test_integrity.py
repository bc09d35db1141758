"""ecgnet's own files: checksummed checkpoints, atomic outputs under SIGKILL, absurd sizes refused."""
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import ENV, FIXTURES, SAMPLES, ecgnet

from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import load_checkpoint


def flip_bytes(data: bytes, n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for i in rng.choice(len(out), n, replace=False):
        out[i] ^= int(rng.integers(1, 256))
    return bytes(out)


def test_a_checkpoint_with_flipped_bytes_is_refused_not_used(quick_run, tmp_path, capsys):
    good = (quick_run / "best.pt").read_bytes()
    refused = 0
    for seed in range(10):
        path = tmp_path / f"flipped{seed}.pt"
        path.write_bytes(flip_bytes(good, 20, seed))
        code = ecgnet("predict", "--checkpoint", path, SAMPLES / "mitbih_beats.csv")
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"checkpoint {path} " in err
        assert any(reason in err for reason in ("corrupt", "not an ecgnet checkpoint", "not allowed to load")), err
        refused += "checksum mismatch" in err
    assert refused >= 1  # some flips land in the tensors and unpickle fine: only the checksum can catch those


def test_random_bytes_are_never_a_traceback(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "random.pt"
    for size in rng.integers(10, 8192, 300):
        path.write_bytes(rng.bytes(int(size)))
        with pytest.raises(EcgnetError, match="truncated or corrupt|not an ecgnet checkpoint"):
            load_checkpoint(path)


def test_a_checkpoint_without_checksum_loads_with_a_notice(quick_run, tmp_path, caplog):
    ckpt = torch.load(quick_run / "best.pt", weights_only=True)
    del ckpt["checksum"]
    torch.save(ckpt, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["epoch"] == ckpt["epoch"]
    assert "has no checksum" in caplog.text and "loading it unverified" in caplog.text


def test_edited_values_are_caught_by_the_checksum(quick_run, tmp_path):
    ckpt = torch.load(quick_run / "best.pt", weights_only=True)
    ckpt["model"]["head.2.bias"][0] += 1e-3
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(EcgnetError, match="is corrupt: checksum mismatch .*; use last.pt / best.pt of the run or retrain"):
        load_checkpoint(tmp_path / "edited.pt")


def test_resume_refuses_a_corrupt_last_pt(quick_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(quick_run, run)
    (run / "last.pt").write_bytes(flip_bytes((run / "last.pt").read_bytes(), 20, 3))
    assert ecgnet("train", "--resume", run) == 2
    assert "is corrupt" in capsys.readouterr().err


ATOMIC_KILL = """
import os, signal, sys
from ecgnet.atomic import atomic_write
with atomic_write(sys.argv[1]) as f:
    f.write(b"x" * 100000)
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_mid_write_leaves_no_file_under_the_final_name(tmp_path):
    target = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, "-c", ATOMIC_KILL, str(target)], env=ENV, timeout=60)
    assert done.returncode == -signal.SIGKILL and not target.exists()
    target.write_bytes(b"old")
    subprocess.run([sys.executable, "-c", ATOMIC_KILL, str(target)], env=ENV, timeout=60)
    assert target.read_bytes() == b"old"  # the previous file survives intact


@pytest.mark.slow
def test_prepare_killed_at_any_moment_leaves_only_whole_files(tmp_path):
    src = tmp_path / "mitdb"
    shutil.copytree(FIXTURES / "mitdb", src)
    command = [sys.executable, "-m", "ecgnet", "prepare", "mitdb", "--src", str(src), "--split", "random", "--out"]
    subprocess.run(command + [str(tmp_path / "whole")], env=ENV, check=True, capture_output=True, timeout=300)
    reference = {p.name: p.read_bytes() for p in (tmp_path / "whole").iterdir()}
    assert len(reference) == 6  # 2 CSVs, 2 side files, the recipe, SHA256SUMS
    for i, delay in enumerate(np.linspace(0.8, 4.0, 9)):
        out = tmp_path / f"killed{i}"
        proc = subprocess.Popen(command + [str(out)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        for path in out.glob("*") if out.exists() else []:
            if not path.name.endswith(".tmp"):
                assert path.read_bytes() == reference[path.name], (delay, path.name)


@pytest.mark.parametrize("case, expect", [
    ("10 GB header", "claims 3,333,333,333 samples per lead"),
    ("longer than its file", "holds 0.1 MB; the record is truncated or its header is wrong"),
])
def test_wfdb_headers_claiming_absurd_sizes_are_refused(tmp_path, capsys, case, expect):
    for f in (FIXTURES / "mitdb").glob("208.*"):
        shutil.copy(f, tmp_path / f.name)
    header = (tmp_path / "208.hea").read_text().splitlines()
    n = 3_333_333_333 if case == "10 GB header" else 216_000
    header[0] = f"208 2 360 {n}"
    (tmp_path / "208.hea").write_text("\n".join(header) + "\n")
    code = ecgnet("predict", "--checkpoint", "x.pt", "--record", tmp_path / "208")
    err = capsys.readouterr().err
    assert code == 2 and expect in err and err.count("\n") == 1, err


def test_a_record_of_one_sample_is_refused(tmp_path, capsys):
    np.save(tmp_path / "one.npy", np.array([0.5]))
    code = ecgnet("predict", "--record", tmp_path / "one.npy", "--fs", "360")
    err = capsys.readouterr().err
    assert code == 2 and "shorter than one 10 s window" in err and err.count("\n") == 1, err


def test_a_mat_file_that_crashes_scipys_parser_is_refused_not_fatal(capsys):
    """A byte-flipped .mat found by the fuzz tests: scipy.io.loadmat dies of a segmentation fault on it
    (or, depending on what memory it reads, raises ZeroDivisionError): either way one line, exit 2."""
    code = ecgnet("predict", "--checkpoint", "mitbih", FIXTURES / "damaged" / "scipy_segfault.mat")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "the .mat parser crashed on this file" in err or "not a readable .mat file" in err


def test_prepared_files_are_checked_against_their_sha256sums(tmp_path, capsys):
    src = tmp_path / "mitdb"
    shutil.copytree(FIXTURES / "mitdb", src)
    assert ecgnet("prepare", "mitdb", "--src", src, "--out", tmp_path / "data", "--split", "random") == 0
    sums = (tmp_path / "data" / "SHA256SUMS").read_text()
    for name in ("mitbih_train.csv", "mitbih_test_index.csv", "mitbih_recipe.json"):
        assert f"  {name}\n" in sums
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "data", capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    from ecgnet.data.beatfiles import read_beats
    path = tmp_path / "data" / "mitbih_train.csv"
    read_beats(path, use_cache=False)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("1", "2", 1)  # one value changed, the file still parses
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(EcgnetError, match="mitbih_train.csv is corrupt: its SHA-256 does not match"):
        read_beats(path, use_cache=False)
