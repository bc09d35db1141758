"""Fixtures: an isolated parse cache and small trained models on the bundled real subset."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from helpers import train_small

# Fuzzing profiles (tests/test_fuzz.py): a short one for every run, a long one for -m fuzz --hypothesis-profile=long.
_FUZZ = dict(deadline=None, derandomize=False, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])
settings.register_profile("default", max_examples=60, **_FUZZ)
settings.register_profile("long", max_examples=2000, **_FUZZ)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ECGNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A 5-class MIT-BIH model trained for 8 short epochs on the bundled subset."""
    os.environ.setdefault("ECGNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    run_dir = tmp_path_factory.mktemp("runs") / "mitbih"
    train_small(run_dir)
    return run_dir


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> Path:
    """A 5-class MIT-BIH checkpoint after one short epoch: for tests of inputs and outputs, not of accuracy."""
    os.environ.setdefault("ECGNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    run_dir = tmp_path_factory.mktemp("runs") / "quick"
    train_small(run_dir, epochs=1, batch_size=64)
    return run_dir
