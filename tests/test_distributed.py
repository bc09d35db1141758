"""torchrun + DistributedDataParallel on CPU (gloo): two ranks train what one process trains, and resume anywhere."""
import socket
import subprocess
import sys

import pytest
import torch
from helpers import ENV, ROOT

from ecgnet.data.datasets import BUNDLED_DIR
from ecgnet.models.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow
COMMON = ["--data-dir", str(BUNDLED_DIR), "--batch-size", "64", "--no-test", "--set", "num_threads=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(*args, ranks: int = 1, common: bool = True) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port", str(free_port())] if ranks > 1 else []
    done = subprocess.run([sys.executable, *launcher, str(ROOT / "train.py"), *(COMMON if common else []), *args], capture_output=True, text=True,
                          env=ENV, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def gap(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_ranks_train_what_one_process_trains_and_resume_on_another_world_size(tmp_path):
    log = str(tmp_path)
    ddp = train("--epochs", "1", "--log-dir", log, "--run-name", "ddp", ranks=2)
    train("--epochs", "1", "--log-dir", log, "--run-name", "one")
    a, b = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    assert a["step"] == b["step"] and a["val_metrics"]["accuracy"] == b["val_metrics"]["accuracy"]
    assert gap(a["train_model"], b["train_model"]) < 5e-4 and gap(a["model"], b["model"]) < 5e-4
    assert ddp.stdout.count("epoch   1/1") == 1                     # rank 0 alone speaks
    train("--resume", str(tmp_path / "ddp"), "--epochs", "2", "--no-test", common=False)  # a 2-rank run continued by one process
    train("--epochs", "2", "--log-dir", log, "--run-name", "two")
    c, d = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert c["epoch"] == d["epoch"] == 2 and c["step"] == d["step"]
    assert torch.equal(c["generator"], d["generator"])               # the same batches drawn in epoch 2
    # The ranks' float rounding (~1e-4 after epoch 1) is amplified by Adam's per-weight scaling, not more:
    assert gap(c["train_model"], d["train_model"]) < 0.1
    assert abs(c["val_metrics"]["accuracy"] - d["val_metrics"]["accuracy"]) < 0.03


def test_two_ranks_train_on_a_store_each_reading_its_own_shards(tmp_path):
    from helpers import ecgnet

    from ecgnet.data.store import BeatStore
    from ecgnet.training.distributed import World
    from ecgnet.training.store_batches import StoreBatches

    assert ecgnet("store", tmp_path / "st", "--data-dir", BUNDLED_DIR, "--shard-beats", "200") == 0
    train("--epochs", "2", "--set", f"store={tmp_path / 'st'}", "--log-dir", str(tmp_path), "--run-name", "ddp-store", ranks=2)
    ckpt = load_checkpoint(tmp_path / "ddp-store" / "last.pt")
    streams = [StoreBatches(BeatStore(tmp_path / "st" / "train"), 64, 0, World(0, 2)) for _ in range(2)]
    assert ckpt["step"] == streams[0].steps(0) + streams[1].steps(1) and ckpt["split"]["store"] == str(tmp_path / "st")
    assert ckpt["history"][1]["train_loss"] < ckpt["history"][0]["train_loss"]  # it learns
