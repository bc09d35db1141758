"""Sharded beat stores: what goes in comes out, batches are seeded permutations read in bounded windows,
ranks read their own shards, a run resumes mid-epoch exactly, and damaged stores are refused in one line."""
import shutil

import numpy as np
import pytest
import torch
from helpers import FAST, FIXTURES, ecgnet

from ecgnet.config import Config
from ecgnet.constants import TASKS
from ecgnet.data.datasets import BUNDLED_DIR, load_splits
from ecgnet.data.store import BeatStore, StoreWriter, store_splits, write_split_stores
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import load_checkpoint
from ecgnet.runtime import configure_process
from ecgnet.training.distributed import World
from ecgnet.training.sources import StoreSource
from ecgnet.training.store_batches import StoreBatches
from ecgnet.training.trainer import train

MITBIH = TASKS["mitbih"]
SPLIT = {"seed": 0, "val_fraction": 0.1, "split_by": "beats", "test_fraction": 0.2}


@pytest.fixture(scope="module")
def splits():
    return load_splits(MITBIH, BUNDLED_DIR, 0.1, 0.2, 0)


@pytest.fixture(scope="module")
def store_dir(splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "bundled"
    write_split_stores(out, splits, MITBIH, SPLIT, shard_beats=200)
    return out


def rows(batches) -> np.ndarray:
    return torch.cat([b[0] for b in batches]).reshape(-1, 187).numpy()


def test_a_store_holds_exactly_the_beats_written(splits, store_dir):
    store = BeatStore(store_dir / "train")
    assert len(store) == len(splits.train) and len(store.shards) == -(-len(splits.train) // 200)
    assert np.array_equal(store.class_counts(), splits.train.class_counts())
    back = store.dataset()
    assert torch.equal(back.x, splits.train.x) and torch.equal(back.y, splits.train.y) and back.records is None
    restored = store_splits(store_dir, MITBIH)
    assert torch.equal(restored.val.x, splits.val.x) and restored.split == SPLIT and restored.data_dir == BUNDLED_DIR
    assert (store_dir / "train" / "SHA256SUMS").read_text().count(".npy") == 3 * len(store.shards)


def test_records_and_rhythm_survive_the_store(tmp_path):
    assert ecgnet("prepare", "mitdb", "--src", FIXTURES / "mitdb", "--out", tmp_path / "data", "--split", "interpatient") == 0
    shutil.copy(tmp_path / "data" / "mitbih_train.csv", tmp_path / "data" / "mitbih_test.csv")
    shutil.copy(tmp_path / "data" / "mitbih_train_index.csv", tmp_path / "data" / "mitbih_test_index.csv")
    assert ecgnet("store", tmp_path / "st", "--data-dir", tmp_path / "data", "--set", "split_by=patients",
                  "--set", "val_fraction=0.25", "--shard-beats", "300") == 0
    source = load_splits(MITBIH, tmp_path / "data", 0.25, 0.2, 0, by_patients=True)
    restored = store_splits(tmp_path / "st", MITBIH)
    back = restored.train.dataset()
    assert restored.train.has_rhythm and torch.equal(back.rhythm, source.train.rhythm)
    assert np.array_equal(back.records, source.train.records) and np.array_equal(restored.val.records, source.val.records)


def test_each_epoch_is_a_seeded_permutation_of_the_store(store_dir, splits):
    store = BeatStore(store_dir / "train")
    stream = StoreBatches(store, 64, seed=3, buffer_beats=500)
    first, again, second = rows(stream.batches(0)), rows(StoreBatches(store, 64, seed=3, buffer_beats=500).batches(0)), rows(stream.batches(1))
    expected = np.sort(splits.train.x.reshape(-1, 187).numpy(), axis=0)
    assert np.array_equal(np.sort(first, axis=0), expected) and np.array_equal(np.sort(second, axis=0), expected)
    assert np.array_equal(first, again) and not np.array_equal(first, second)
    assert stream.steps(0) == len(list(stream.batches(0))) == -(-len(store) // 64)


def test_windows_bound_memory_and_resume_skips_unread(store_dir, monkeypatch):
    store = BeatStore(store_dir / "train")
    stream = StoreBatches(store, 64, seed=0, buffer_beats=450)
    assert all(stream.sizes[w].sum() <= 450 for w in stream.windows(0))  # two 200-beat shards per window here
    whole = list(stream.batches(0))
    read = []
    original = StoreBatches.read_window
    monkeypatch.setattr(StoreBatches, "read_window", lambda self, e, w, s: read.append(w) or original(self, e, w, s))
    tail = list(stream.batches(0, start=20))
    assert len(tail) == len(whole) - 20 and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(tail, whole[20:]))
    assert min(read) > 0  # windows wholly before step 20 are skipped, not read


def test_ranks_read_disjoint_shards_and_take_equal_steps(store_dir):
    store = BeatStore(store_dir / "train")
    ranks = [StoreBatches(store, 63, seed=0, world=World(r, 3)) for r in range(3)]
    for epoch in range(3):
        orders = [set(s.order(epoch).tolist()) for s in ranks]
        assert set().union(*orders) == set(range(len(store.shards))) and sum(map(len, orders)) == len(store.shards)
        steps = {s.steps(epoch) for s in ranks}
        assert len(steps) == 1
        for s in ranks:
            sizes = [len(b[1]) for b in s.batches(epoch)]
            assert sizes == [21] * s.steps(epoch)


def configured(tmp_path, store_dir, **overrides) -> Config:
    cfg = Config(**(FAST | {"store": str(store_dir), "log_dir": str(tmp_path), "epochs": 1} | overrides)).validate()
    configure_process(cfg.num_threads, cfg.device)
    return cfg


@pytest.mark.slow
def test_a_store_run_killed_mid_epoch_resumes_exactly(tmp_path, store_dir, monkeypatch):
    cfg = configured(tmp_path, store_dir, save_every_steps=10, run_name="straight")
    train(cfg)
    original = StoreSource.batches

    def killed_at_step_25(self, epoch, start=0):
        for i, batch in enumerate(original(self, epoch, start)):
            if start + i == 25:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(StoreSource, "batches", killed_at_step_25)
    with pytest.raises(KeyboardInterrupt):
        train(configured(tmp_path, store_dir, save_every_steps=10, run_name="killed"))
    last = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert last["epoch"] == 0 and last["train_state"]["epoch_step"] == 20
    monkeypatch.setattr(StoreSource, "batches", original)
    train(configured(tmp_path, store_dir, save_every_steps=10, run_name="killed"), run_dir=tmp_path / "killed", resume=last)
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(tmp_path / "killed" / "last.pt")
    assert a["step"] == b["step"] and a["split"]["store"] == str(store_dir)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.parametrize("damage, expect", [
    (lambda d: (d / "store.json").unlink(), "not a beat store"),
    (lambda d: (d / "store.json").write_text("{"), "store.json: unreadable"),
    (lambda d: (d / "store.json").write_text('{"format": "other"}'), "not a version-1 ecgnet beat store"),
    (lambda d: (d / "shard-00001.beats.npy").unlink(), "shard-00001.beats.npy: missing or unreadable"),
    (lambda d: (d / "shard-00002.labels.npy").write_bytes((d / "shard-00002.labels.npy").read_bytes()[:100]), "unreadable|holds"),
    (lambda d: np.save(d / "shard-00000.labels.npy", np.zeros(5, np.uint8)), "holds 5 uint8 rows, the index says 200"),
    (lambda d: np.save(d / "shard-00003.labels.npy", np.full(200, 9, np.uint8)), "label 9 for 5 classes"),
    (lambda d: np.save(d / "shard-00004.beats.npy", np.full((200, 187), np.nan, np.float32)), "non-finite samples"),
    (lambda d: np.save(d / "shard-00005.beats.npy", np.zeros((200, 100), np.float32)), "not \\(187,\\)"),
])
def test_damaged_stores_are_refused_in_one_line(store_dir, tmp_path, damage, expect):
    copy = tmp_path / "st"
    shutil.copytree(store_dir, copy)
    damage(copy / "train")
    with pytest.raises(EcgnetError, match=expect) as e:
        store_splits(copy, MITBIH).train.dataset()
    assert "\n" not in str(e.value)


def test_impossible_store_settings_are_refused(store_dir, tmp_path):
    store = BeatStore(store_dir / "train")
    with pytest.raises(EcgnetError, match="does not split evenly over 3 ranks"):
        StoreBatches(store, 64, 0, World(0, 3))
    with pytest.raises(EcgnetError, match="12 shard\\(s\\) for 16 ranks"):
        StoreBatches(store, 64, 0, World(0, 16))
    with pytest.raises(EcgnetError, match="fewer than its batch"):
        StoreBatches(store, 4096, 0, World(0, 2)).steps(0)
    with pytest.raises(EcgnetError, match="'balanced_sampling' draws from resident data"):
        StoreSource(store, configured(tmp_path, store_dir, imbalance="balanced_sampling"), torch.device("cpu"), World(), False)
    with pytest.raises(EcgnetError, match="save_every_steps' needs a store"):
        Config(save_every_steps=5).validate()
    with pytest.raises(EcgnetError, match="holds mitbih beats, the config's task is ptbdb"):
        store_splits(store_dir, TASKS["ptbdb"])
    with pytest.raises(EcgnetError, match="already holds a beat store"):
        StoreWriter(store_dir / "train", MITBIH)


def test_store_cli_errors_exit_2(store_dir, capsys):
    assert ecgnet("store", store_dir) == 2
    assert ecgnet("train", "--set", f"store={store_dir / 'missing'}") == 2
    err = capsys.readouterr().err
    assert "already holds a beat store" in err and "not a beat store" in err and "Traceback" not in err


@pytest.mark.slow
def test_long_epochs_report_progress_without_a_terminal(tmp_path, store_dir, monkeypatch, caplog):
    import ecgnet.training.trainer
    monkeypatch.setattr(ecgnet.training.trainer, "LONG_EPOCH_STEPS", 20)  # as if the bundled store were a large one
    with caplog.at_level("INFO", logger="ecgnet"):
        train(configured(tmp_path, store_dir, run_name="progress"))
    lines = [r.getMessage() for r in caplog.records if "step " in r.getMessage()]
    steps = StoreBatches(BeatStore(store_dir / "train"), 32, 0).steps(0)
    assert len(lines) == 10 and f"step {steps // 10}/{steps}," in lines[0] and "beats/s" in lines[0]
