import gzip
import lzma
import os
import time

import numpy as np
import pytest

from ecgnet.constants import TASKS
from ecgnet.data.beatfiles import cache_dir, read_beats, write_beats_csv
from ecgnet.data.datasets import BUNDLED_DIR, BeatDataset, load_splits, stratified_split
from ecgnet.errors import EcgnetError

TEST_XZ = BUNDLED_DIR / "mitbih_test.csv.xz"


@pytest.fixture(scope="module")
def rows():
    with lzma.open(TEST_XZ, "rt") as f:
        return f.read().splitlines()[:30]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_gz_xz_read_identically(tmp_path, rows):
    plain = write(tmp_path / "b.csv", rows)
    with gzip.open(tmp_path / "b.csv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    with lzma.open(tmp_path / "b.csv.xz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    x0, y0 = read_beats(plain, 5)
    for name in ("b.csv.gz", "b.csv.xz"):
        x, y = read_beats(tmp_path / name, 5)
        assert np.array_equal(x, x0) and np.array_equal(y, y0)
    assert x0.shape == (30, 187) and x0.dtype == np.float32 and y0.dtype == np.int64
    assert x0.min() >= 0 and x0.max() <= 1


def test_write_read_round_trip_is_exact(tmp_path):
    x, y = read_beats(TEST_XZ, 5)
    write_beats_csv(tmp_path / "rt.csv.gz", x, y)
    x2, y2 = read_beats(tmp_path / "rt.csv.gz", 5, use_cache=False)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_cache_hit_is_identical_and_invalidated_on_change(tmp_path, rows):
    path = write(tmp_path / "c.csv", rows)
    x1, y1 = read_beats(path, 5)
    entries = list(cache_dir().glob("c.csv.*.npz"))
    assert len(entries) == 1
    x2, y2 = read_beats(path, 5)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    time.sleep(0.01)
    write(path, rows[:10])  # edited source -> new key, re-parsed
    x3, _ = read_beats(path, 5)
    assert len(x3) == 10


def test_cache_works_when_source_is_read_only(tmp_path, rows):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = write(folder / "r.csv", rows)
    os.chmod(folder, 0o555)
    try:
        x, _ = read_beats(path, 5)
        assert len(x) == 30 and list(cache_dir().glob("r.csv.*.npz"))
    finally:
        os.chmod(folder, 0o755)


def replace_cell(line, col, value):
    cells = line.split(",")
    cells[col] = value
    return ",".join(cells)


@pytest.mark.parametrize("case, expect", [
    ("missing", "file not found"),
    ("directory", "is a directory"),
    ("empty", "file is empty"),
    ("header", "row 1, column 1: 'c1' is not a number; the files have no header row"),
    ("187 columns", "row 1: 187 values, expected 188"),
    ("189 columns", "row 1: 189 values, expected 188"),
    ("ragged", "row 5: 187 values, expected 188 (187 samples + label) (a ragged row?)"),
    ("text cell", "row 3, column 10: 'abc' is not a number"),
    ("nan", "row 4, column 2: value nan is not finite"),
    ("inf", "row 4, column 2: value inf is not finite"),
    ("float label", "row 6: label 1.5 is not an integer class"),
    ("label 7", "row 2: label 7 is outside this task's classes 0..4"),
    ("truncated xz", "truncated or corrupt"),
    ("truncated gz", "truncated or corrupt"),
])
def test_bad_files_give_one_clear_error(tmp_path, rows, case, expect):
    lines = list(rows)
    path = tmp_path / "bad.csv"
    if case == "missing":
        path = tmp_path / "nope.csv"
    elif case == "directory":
        path = tmp_path / "adir.csv"
        path.mkdir()
    elif case == "empty":
        path.write_text("")
    elif case == "header":
        write(path, [",".join(f"c{i}" for i in range(1, 189))] + lines)
    elif case == "187 columns":
        write(path, [line.rsplit(",", 1)[0] for line in lines])
    elif case == "189 columns":
        write(path, [line + ",0" for line in lines])
    elif case == "ragged":
        lines[4] = lines[4].rsplit(",", 1)[0]
        write(path, lines)
    elif case == "text cell":
        lines[2] = replace_cell(lines[2], 9, "abc")
        write(path, lines)
    elif case in ("nan", "inf"):
        lines[3] = replace_cell(lines[3], 1, case)
        write(path, lines)
    elif case == "float label":
        lines[5] = replace_cell(lines[5], 187, "1.5")
        write(path, lines)
    elif case == "label 7":
        lines[1] = replace_cell(lines[1], 187, "7")
        write(path, lines)
    elif case.startswith("truncated"):
        data = TEST_XZ.read_bytes() if case.endswith("xz") else gzip.compress(lzma.decompress(TEST_XZ.read_bytes()))
        path = tmp_path / ("bad.csv.xz" if case.endswith("xz") else "bad.csv.gz")
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EcgnetError) as err:
        read_beats(path, 5)
    message = str(err.value)
    assert expect in message and str(path) in message
    assert "\n" not in message


def test_ptb_labels_refused_for_two_class_check(tmp_path):
    with pytest.raises(EcgnetError, match="outside this task's classes 0..1"):
        read_beats(TEST_XZ, 2)  # MIT-BIH labels 2..4 in a 2-class (PTB) task


def test_stratified_split_is_seeded_disjoint_and_stratified():
    _, y = read_beats(BUNDLED_DIR / "mitbih_train.csv.xz", 5)
    a_keep, a_held = stratified_split(y, 0.1, seed=0)
    b_keep, b_held = stratified_split(y, 0.1, seed=0)
    c_keep, c_held = stratified_split(y, 0.1, seed=1)
    assert np.array_equal(a_held, b_held) and not np.array_equal(a_held, c_held)
    assert not set(a_keep) & set(a_held) and len(a_keep) + len(a_held) == len(y)
    share = np.bincount(y[a_held], minlength=5) / np.bincount(y, minlength=5)
    assert np.all(np.abs(share - 0.1) < 0.03)


def test_ptb_splits_are_disjoint_and_cover_the_files():
    s = load_splits(TASKS["ptbdb"], BUNDLED_DIR, 0.1, 0.2, seed=0, with_test=True)
    total = len(s.train) + len(s.val) + len(s.test)
    assert total == 901 and abs(len(s.test) - 0.2 * total) <= 1
    rows = lambda d: {r.tobytes() for r in d.x.numpy()}  # noqa: E731
    assert not rows(s.train) & rows(s.test) and not rows(s.val) & rows(s.test)


def test_beat_dataset_shapes():
    x, y = read_beats(TEST_XZ, 5)
    ds = BeatDataset(x, y, TASKS["mitbih"].class_names)
    assert ds.x.shape == (len(y), 1, 187) and len(ds) == len(y)
    xb, yb = ds[3]
    assert xb.shape == (1, 187) and int(yb) == y[3]


@pytest.mark.parametrize("name, content, expect", [
    ("beats.npy", b"\x93NUMPY garbage", "not a readable .npy array"),
    ("beats.npy", None, "not real numbers"),
    ("beats.mat", b"MATLAB 5.0 MAT-file, truncated", "not a readable .mat file"),
    ("beats.txt", b"0.1,0.2", "unsupported file type"),
    ("missing.npy", "absent", "file not found"),
])
def test_bad_beat_files_of_every_format(tmp_path, name, content, expect):
    from ecgnet.data.beatfiles import read_beats_file
    path = tmp_path / name
    if content is None:
        np.save(path, np.full((2, 187), 1 + 2j))
    elif content != "absent":
        path.write_bytes(content)
    with pytest.raises(EcgnetError, match=expect):
        read_beats_file(path)


def test_beat_files_of_every_format_read_the_same():
    from ecgnet.data.beatfiles import read_beats_file
    root = BUNDLED_DIR.parents[1] / "samples"
    csv_beats, csv_labels = read_beats_file(root / "mitbih_beats.csv")
    for name in ("mitbih_beats.npy", "mitbih_beats.mat"):
        beats, _ = read_beats_file(root / name)
        np.testing.assert_allclose(beats, csv_beats, atol=1e-6)
    assert csv_labels is not None and len(csv_labels) == len(csv_beats) == 10
