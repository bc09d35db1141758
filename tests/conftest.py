"""Shared fixtures: real data excerpts (ecgnet/bundled), an isolated parse cache, one small trained model."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgnet.config import Config  # noqa: E402
from ecgnet.data import BUNDLED_DIR, TASKS, load_splits  # noqa: E402

# Small, fast and deterministic: one thread, small batches so a few epochs on ~2k beats learn.
FAST = dict(batch_size=32, epochs=8, num_threads=1, device="cpu", patience=0)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ECGNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def bundled() -> Path:
    return BUNDLED_DIR


def load_cli(name: str):
    """Import a top-level CLI script (train.py, test.py, predict.py) as a module."""
    spec = importlib.util.spec_from_file_location(f"ecgnet_cli_{name}", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_small(run_dir: Path, **overrides) -> dict:
    from ecgnet.engine import train
    cfg = Config(**(FAST | {"data_dir": str(BUNDLED_DIR), "log_dir": str(run_dir.parent), "run_name": run_dir.name} | overrides)).validate()
    task = TASKS[cfg.task]
    splits = load_splits(task, BUNDLED_DIR, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    return train(cfg, splits, run_dir)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A 5-class MIT-BIH model trained for 8 short epochs on the bundled subset."""
    os.environ.setdefault("ECGNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    run_dir = tmp_path_factory.mktemp("runs") / "mitbih"
    train_small(run_dir)
    return run_dir
