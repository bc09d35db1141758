"""Streaming: beats labelled as the signal arrives, matching the offline path, with bounded memory and latency."""
import subprocess
import sys

import numpy as np
import pytest
from helpers import ENV, FIXTURES, ROOT, ecgnet

from ecgnet.errors import EcgnetError
from ecgnet.serving.inference import Predictor
from ecgnet.serving.labelling import label_record
from ecgnet.signals.records import Recording, read_recording
from ecgnet.signals.streaming import BUFFER_S, BeatStream, sample_chunks

REC_208 = FIXTURES / "mitdb" / "208"


def stream_beats(rec: Recording, chunk: int, detector: str = "gqrs", **kwargs):
    stream = BeatStream(rec.fs, detector, **kwargs)
    beats = []
    for i in range(0, len(rec.signal), chunk):
        beats += stream.push(rec.signal[i:i + chunk])
    return stream, beats + stream.finish()


@pytest.mark.parametrize("detector", ["gqrs", "fused"])
def test_streamed_beats_match_the_offline_recording(detector):
    rec = read_recording(REC_208)
    predictor = Predictor.from_checkpoint("mitbih", "cpu")
    offline = label_record(predictor, rec, detector)
    _, beats = stream_beats(rec, 97, detector)            # an odd chunk size: beats must not depend on it
    samples = np.array([b.sample for b in beats])
    names = predictor.predict(np.stack([b.beat for b in beats]))
    found = np.isin(offline["table"]["sample"], samples)
    assert found.mean() >= 0.95                          # only the first seconds (detector warm-up) are missed
    same = {s: n for s, n in zip(offline["table"]["sample"], offline["table"]["name"])}
    agree = np.mean([same[s] == n for s, n in zip(samples, names) if s in same])
    assert agree >= 0.95
    latency = np.array([(b.cut_at - b.sample) / rec.fs for b in beats if b.cut_at < len(rec.signal)])
    assert latency.max() <= 3.0 and (np.diff(samples) > 0).all()


@pytest.mark.slow
def test_memory_stays_flat_over_two_hours_of_a_looped_record():
    rec = read_recording(REC_208)
    stream = BeatStream(rec.fs, "sleepecg")              # the fast detector: 7,200 detections in a few seconds
    total, sizes = 0, []
    for _ in range(120):                                  # 120 x the one-minute excerpt = 2 hours
        signal = rec.signal.copy()
        signal[1000:1010] = np.nan                        # dropped samples on the way
        for i in range(0, len(signal), 3600):
            total += len(stream.push(signal[i:i + 3600]))
        sizes.append((len(stream.buffer), len(stream.peaks)))
    assert max(b for b, _ in sizes) <= (BUFFER_S + 10) * rec.fs and max(p for _, p in sizes) <= 60
    assert total > 120 * 70


def test_rhythm_models_wait_for_the_next_beat():
    rec = read_recording(REC_208)
    _, plain = stream_beats(rec, 360)
    _, rr = stream_beats(rec, 360, wait_for_next_beat=True, before_r_s=0.25)
    lag = {b.sample: b.cut_at for b in plain}
    assert all(b.cut_at >= lag.get(b.sample, 0) for b in rr)
    assert all(b.rhythm[1] > 0.2 for b in rr)             # post-R-R known when cut


def test_sample_chunks_text_and_float32():
    import io
    text = io.BytesIO(b"0.5\n1.25\n\n-3,ignored\n7")
    assert np.concatenate(list(sample_chunks(text, "text", chunk_bytes=3))).tolist() == [0.5, 1.25, -3.0, 7.0]
    raw = np.array([1.5, -2.0, 3.25], dtype="<f4").tobytes()
    assert np.concatenate(list(sample_chunks(io.BytesIO(raw), "f32", chunk_bytes=5))).tolist() == [1.5, -2.0, 3.25]
    with pytest.raises(EcgnetError, match="stream line 2: b'abc' is not a number"):
        list(sample_chunks(io.BytesIO(b"1\nabc\n"), "text"))
    with pytest.raises(EcgnetError, match="stray bytes"):
        list(sample_chunks(io.BytesIO(raw + b"\x00"), "f32"))


@pytest.mark.slow
def test_predict_stream_prints_beats_from_stdin():
    signal = read_recording(REC_208).signal
    for fmt, payload in (("text", "\n".join(f"{v:.4f}" for v in signal).encode()), ("f32", signal.astype("<f4").tobytes())):
        done = subprocess.run([sys.executable, "-m", "ecgnet", "predict", "--stream", "--fs", "360", "--format", fmt,
                               "--checkpoint", "mitbih"], input=payload, capture_output=True, env=ENV, cwd=ROOT, timeout=120)
        lines = done.stdout.decode().splitlines()
        assert done.returncode == 0 and lines[0] == "time_s,sample,class,name,probability,irregular_rhythm" and len(lines) > 90, done.stderr


def test_predict_stream_needs_fs(capsys):
    assert ecgnet("predict", "--stream") == 2
    assert "--stream needs the signal's sampling rate" in capsys.readouterr().err
