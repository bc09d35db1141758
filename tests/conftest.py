"""Fixtures: an isolated parse cache and small trained models on the bundled real subset."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES, ecgnet, train_small
from hypothesis import HealthCheck, settings

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


@pytest.fixture(scope="session")
def interpatient_data(tmp_path_factory):
    """``ecgnet prepare mitdb --split interpatient`` on the four DS1 excerpts (all land in mitbih_train)."""
    out = tmp_path_factory.mktemp("ds")
    src = out / "mitdb"
    shutil.copytree(FIXTURES / "mitdb", src)
    assert ecgnet("prepare", "mitdb", "--src", src, "--out", out / "data", "--split", "interpatient") == 0
    shutil.copy(out / "data" / "mitbih_train.csv", out / "data" / "mitbih_test.csv")             # DS2 has no excerpt here:
    shutil.copy(out / "data" / "mitbih_train_index.csv", out / "data" / "mitbih_test_index.csv")  # test on the same beats
    return out / "data"
