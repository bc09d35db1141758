"""Property-based fuzzing of every reader: damaged or absurd input is read as valid data or refused with
the project's one-line user error (EcgnetError), never any other exception.

Seeds are real files (sample beats, a checkpoint, a config, a WFDB excerpt, a model file, an ONNX export);
each example truncates, flips bytes in, appends junk to, or replaces one of them with random bytes, or
writes extreme values. Short profile in every run; long: pytest -m fuzz --hypothesis-profile=long.
"""
from __future__ import annotations

import gzip
import io
import lzma
import shutil

import numpy as np
import pytest
import scipy.io
from helpers import FIXTURES, ROOT, SAMPLES, ecgnet
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from ecgnet.config import load_config
from ecgnet.data.beatfiles import read_beats_file
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import checkpoint_digest, load_checkpoint
from ecgnet.models.pretrained import WEIGHTS_DIR, load_model_file
from ecgnet.signals.records import read_recording

pytestmark = pytest.mark.fuzz
CSV = (SAMPLES / "mitbih_beats.csv").read_bytes()
SEEDS = {".csv": CSV, ".csv.gz": gzip.compress(CSV), ".csv.xz": lzma.compress(CSV),
         ".npy": (SAMPLES / "mitbih_beats.npy").read_bytes(), ".mat": (SAMPLES / "mitbih_beats.mat").read_bytes()}


@st.composite
def damaged(draw, seed: bytes) -> bytes:
    """``seed`` truncated, with bytes flipped, with junk appended, or replaced by random bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "junk", "random"]))
    if kind == "truncate":
        return seed[:draw(st.integers(0, max(len(seed) - 1, 0)))]
    if kind == "junk":
        return seed + draw(st.binary(min_size=1, max_size=300))
    if kind == "random":
        return draw(st.binary(max_size=8192))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 20))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def reads_or_refuses(read, *args):
    """The property: a value comes back, or EcgnetError — anything else fails the test."""
    try:
        return read(*args)
    except EcgnetError:
        return None


def check_beats(result) -> None:
    if result is not None:
        beats, labels = result
        assert beats.ndim == 2 and beats.shape[1] == 187 and beats.dtype == np.float32 and np.isfinite(beats).all()
        assert labels is None or (len(labels) == len(beats) and (labels >= 0).all())


@pytest.mark.parametrize("suffix", list(SEEDS))
def test_beat_files(tmp_path_factory, suffix):
    folder = tmp_path_factory.mktemp("beats")

    @given(damaged(SEEDS[suffix]))
    def prop(data):
        path = folder / f"beats{suffix}"
        path.write_bytes(data)
        check_beats(reads_or_refuses(read_beats_file, path))
    prop()


extreme = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324, -0.0, 2.0 ** 70]))
dtypes = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex64])


@given(arrays(dtypes, array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=200), elements=None), st.sampled_from([".npy", ".csv", ".mat"]))
def test_beat_files_with_any_shape_dtype_and_value(tmp_path_factory, array, suffix):
    path = tmp_path_factory.mktemp("arrays") / f"beats{suffix}"
    if suffix == ".npy":
        np.save(path, array)
    elif suffix == ".mat":
        scipy.io.savemat(path, {"beats": array})
    elif array.size == 0:
        path.write_bytes(b"")
    else:
        flat = np.atleast_1d(array)
        np.savetxt(path, flat.reshape(len(flat), -1), delimiter=",")
    check_beats(reads_or_refuses(read_beats_file, path))


@given(st.lists(st.lists(extreme, min_size=187, max_size=189), min_size=0, max_size=4))
def test_beat_csvs_with_extreme_values(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("extreme") / "beats.csv"
    path.write_text("".join(",".join(repr(v) for v in row) + "\n" for row in rows))
    check_beats(reads_or_refuses(read_beats_file, path))


def test_checkpoints(quick_run, tmp_path_factory):
    seed = (quick_run / "best.pt").read_bytes()
    original = checkpoint_digest(load_checkpoint(quick_run / "best.pt"))
    folder = tmp_path_factory.mktemp("ckpt")

    @given(damaged(seed))
    def prop(data):
        path = folder / "best.pt"
        path.write_bytes(data)
        ckpt = reads_or_refuses(load_checkpoint, path)
        assert ckpt is None or checkpoint_digest(ckpt) == original  # loaded means unchanged: never silent corruption
    prop()


def test_config_json(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config")

    @given(damaged((ROOT / "config" / "config.json").read_bytes()))
    def prop(data):
        path = folder / "config.json"
        path.write_bytes(data)
        cfg = reads_or_refuses(load_config, path)
        assert cfg is None or cfg.lr > 0
    prop()


@pytest.mark.parametrize("part", [".hea", ".dat"])
def test_wfdb_records(tmp_path_factory, part):
    folder = tmp_path_factory.mktemp("wfdb")
    for f in (FIXTURES / "mitdb").glob("208.*"):
        shutil.copy(f, folder / f.name)
    seed = (folder / f"208{part}").read_bytes()

    @given(damaged(seed))
    def prop(data):
        (folder / f"208{part}").write_bytes(data)
        rec = reads_or_refuses(read_recording, folder / "208")
        assert rec is None or (rec.signal.ndim == 1 and rec.fs > 0)
    prop()


@given(arrays(dtypes, array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=50), elements=None), st.sampled_from([".npy", ".csv"]),
       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 100_000)))
def test_signal_files_with_fs(tmp_path_factory, array, suffix, fs):
    path = tmp_path_factory.mktemp("signal") / f"sig{suffix}"
    if suffix == ".npy":
        np.save(path, array)
    else:
        path.write_bytes(b"" if array.size == 0 else "\n".join(map(repr, np.ravel(array).tolist())).encode())
    rec = reads_or_refuses(read_recording, path, None, fs)
    assert rec is None or (rec.signal.ndim == 1 and np.isfinite(rec.fs) and rec.fs > 0)


def test_edf_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edf")

    @given(damaged((FIXTURES / "edf" / "208.edf").read_bytes()))
    def prop(data):
        (folder / "r.edf").write_bytes(data)
        rec = reads_or_refuses(read_recording, folder / "r.edf")
        assert rec is None or (rec.signal.ndim == 1 and rec.fs > 0)
    prop()


@given(st.binary(max_size=3000), st.sampled_from(["text", "f32"]))
def test_stream_input(data, fmt):
    from ecgnet.signals.streaming import BeatStream, sample_chunks
    stream = BeatStream(360.0, "gqrs")
    try:
        for chunk in sample_chunks(io.BytesIO(data), fmt, chunk_bytes=64):
            stream.push(chunk)
        stream.finish()
    except EcgnetError:
        pass


@pytest.mark.parametrize("part", [".safetensors", ".json"])
def test_model_files(tmp_path_factory, part):
    folder = tmp_path_factory.mktemp("model")
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"mitbih{suffix}", folder / f"mitbih{suffix}")
    seed = (folder / f"mitbih{part}").read_bytes()

    @given(damaged(seed))
    def prop(data):
        (folder / f"mitbih{part}").write_bytes(data)
        reads_or_refuses(load_model_file, folder / "mitbih.safetensors")
    prop()


def test_onnx_files(quick_run, tmp_path_factory):
    from ecgnet.serving.onnx_backend import OnnxPredictor
    folder = tmp_path_factory.mktemp("onnx")
    assert ecgnet("export", "--checkpoint", quick_run / "best.pt", "--onnx", folder / "seed.onnx") == 0
    seed = (folder / "seed.onnx").read_bytes()
    beats = np.asarray(read_beats_file(SAMPLES / "mitbih_beats.csv")[0])

    @given(damaged(seed))
    def prop(data):
        (folder / "m.onnx").write_bytes(data)
        predictor = reads_or_refuses(OnnxPredictor, folder / "m.onnx")
        if predictor is not None:
            reads_or_refuses(predictor.predict_proba, beats)
    prop()


@given(damaged(CSV))
def test_predict_cli_exits_0_or_2_without_traceback(tmp_path_factory, capsys, data):
    path = tmp_path_factory.mktemp("cli") / "beats.csv"
    path.write_bytes(data)
    code = ecgnet("predict", path)
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    assert code == 0 or err.count("\n") == 1
