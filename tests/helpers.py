"""Helpers shared by the tests: paths, a small training run, the CLIs in- and out-of-process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ecgnet.cli import main as cli_main
from ecgnet.config import Config
from ecgnet.constants import TASKS
from ecgnet.data import BUNDLED_DIR, load_splits
from ecgnet.runtime import configure_process
from ecgnet.trainer import train

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
