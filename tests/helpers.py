"""Helpers shared by the tests: paths, a small training run, the CLIs in- and out-of-process."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ecgnet.cli import main as cli_main
from ecgnet.config import Config
from ecgnet.constants import TASKS
from ecgnet.data.datasets import BUNDLED_DIR, load_splits
from ecgnet.runtime import configure_process
from ecgnet.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLES = ROOT / "samples"
ENV = os.environ | {"PYTHONUNBUFFERED": "1"}

# Small, fast and deterministic: one thread, small batches so a few epochs on ~2k beats learn.
FAST = dict(batch_size=32, epochs=8, num_threads=1, device="cpu", patience=0)


def train_small(run_dir: Path, **overrides) -> dict:
    """Train on the bundled subset into ``run_dir`` with the FAST settings (and ``overrides``)."""
    cfg = Config(**(FAST | {"data_dir": str(BUNDLED_DIR), "log_dir": str(run_dir.parent), "run_name": run_dir.name} | overrides)).validate()
    configure_process(cfg.num_threads, cfg.device)  # what the CLI does: one thread, deterministic kernels
    task = TASKS[cfg.task]
    splits = load_splits(task, Path(cfg.data_dir), cfg.val_fraction, cfg.test_fraction, cfg.seed, by_patients=cfg.split_by == "patients")
    run_dir.mkdir(parents=True, exist_ok=True)
    return train(cfg, splits, run_dir)


def ecgnet(*args) -> int:
    """``ecgnet ARGS`` in this process (console output goes to capsys)."""
    return cli_main([str(a) for a in args])


def run_script(command: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """A command in a fresh Python process: ['train.py', ...] runs the top-level script, ['-m', 'ecgnet', ...] the package."""
    head = [str(ROOT / command[0])] if str(command[0]).endswith(".py") else [str(command[0])]
    proc = subprocess.run([sys.executable, *head, *map(str, command[1:])], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_app(port: int, seconds: float = 60) -> subprocess.Popen:
    """``ecgnet app --port PORT`` in a fresh process, returned once its page answers."""
    proc = subprocess.Popen([sys.executable, "-m", "ecgnet", "app", "--port", str(port)], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + seconds
    while time.time() < end:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            assert proc.poll() is None, f"ecgnet app exited with {proc.returncode} before its page answered"
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("ecgnet app did not answer in time")
