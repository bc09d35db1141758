"""Whole recordings in bulk: EDF input, library R-peak detectors, folders of recordings in a process pool."""
import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import FIXTURES, ecgnet
from wfdb import processing

from ecgnet.errors import EcgnetError
from ecgnet.serving.batch import find_records, output_names
from ecgnet.serving.inference import Predictor
from ecgnet.serving.labelling import label_record
from ecgnet.signals.fusion import fuse_detections, qrs_band, qrs_energy, vote, window_argmax
from ecgnet.signals.preprocess import detect_r_peaks, resample
from ecgnet.signals.records import read_beat_annotations, read_recording, read_wfdb

EDF_208 = FIXTURES / "edf" / "208.edf"
REC_208 = FIXTURES / "mitdb" / "208"


def test_edf_and_wfdb_of_the_same_excerpt_give_the_same_beats_and_labels():
    edf, wfdb_rec = read_recording(EDF_208), read_recording(REC_208)
    assert edf.lead == wfdb_rec.lead == "MLII" and edf.fs == wfdb_rec.fs == 360
    np.testing.assert_allclose(edf.signal, wfdb_rec.signal, atol=1e-4)  # uV in the file, mV here
    predictor = Predictor.from_checkpoint("mitbih-rr", "cpu")
    a, b = label_record(predictor, edf), label_record(predictor, wfdb_rec)
    assert (a["table"]["sample"] == b["table"]["sample"]).all() and (a["table"]["name"] == b["table"]["name"]).all()
    np.testing.assert_allclose(a["table"]["probability"], b["table"]["probability"], atol=1e-3)


def test_edf_lead_by_name_and_bad_edf_files(tmp_path):
    assert read_recording(EDF_208, lead="v1").lead == "V1"
    with pytest.raises(EcgnetError, match="no lead named 'V9'; the recording has MLII, V1"):
        read_recording(EDF_208, lead="V9")
    (tmp_path / "cut.edf").write_bytes(EDF_208.read_bytes()[:5000])
    (tmp_path / "junk.edf").write_bytes(b"0       not an edf header" * 20)
    for name in ("cut.edf", "junk.edf", "missing.edf"):
        with pytest.raises(EcgnetError, match="EDF|not found|truncated"):
            read_recording(tmp_path / name).signal.sum()


@pytest.mark.parametrize("method, se, ppv", [
    ("gqrs", 0.98, 0.99), ("nk-neurokit", 0.99, 0.99), ("fused", 0.99, 0.995),
    ("sleepecg", 0.93, 0.98),   # misses beats of PVC-rich stretches: 26 of 106 in the first minute of 208
])
def test_library_detectors_find_the_annotated_beats(method, se, ppv):
    tp = fp = fn = 0
    for name in ("201", "208", "209", "223"):
        rec = read_wfdb(FIXTURES / "mitdb" / name)
        ref, _ = read_beat_annotations(FIXTURES / "mitdb" / name)
        c = processing.compare_annotations(ref, detect_r_peaks(rec.signal, rec.fs, method), int(0.15 * rec.fs))
        tp, fp, fn = tp + c.tp, fp + c.fp, fn + c.fn
    assert tp / (tp + fn) >= se and tp / (tp + fp) >= ppv, (method, tp, fp, fn)


def test_fusion_recovers_the_beats_sleepecg_drops_at_any_rate():
    rec = read_wfdb(REC_208)
    ref, _ = read_beat_annotations(REC_208)
    fast = detect_r_peaks(rec.signal, rec.fs, "sleepecg")
    for fs in (360, 250, 128):  # the same excerpt at other sampling rates
        signal = resample(rec.signal, rec.fs, fs)
        found = np.rint(detect_r_peaks(signal, fs, "fused") * rec.fs / fs).astype(int)
        c = processing.compare_annotations(ref, found, int(0.15 * rec.fs))
        assert c.fn <= 3 and c.fp <= 1, (fs, c.tp, c.fp, c.fn)
    assert processing.compare_annotations(ref, fast, int(0.15 * rec.fs)).fn >= 20  # what sleepecg alone misses here


def loop_vote(detections: list[np.ndarray], tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain statement of ``vote``: one candidate per run of marks within ``tolerance`` of its first."""
    position = np.concatenate(detections).astype(np.int64)
    source = np.concatenate([np.full(len(d), i) for i, d in enumerate(detections)])
    order = np.lexsort((source, position))
    position, source = position[order], source[order]
    starts = [0]
    for i in range(1, len(position)):
        if position[i] - position[starts[-1]] > tolerance:
            starts.append(i)
    beats, votes = [], []
    for lo, hi in zip(starts, starts[1:] + [len(position)]):
        members, where = source[lo:hi], position[lo:hi]
        beats.append(int(where[members == 0][0]) if members.min() == 0 else int(np.median(where)))
        votes.append(len(np.unique(members)))
    return np.array(beats), np.array(votes)


def test_the_vectorised_fusion_steps_equal_their_plain_loops():
    rec = read_wfdb(REC_208)
    signal = np.asarray(rec.signal, np.float64)
    centred = np.abs(signal - np.median(signal))
    marks = [detect_r_peaks(signal, rec.fs, m) for m in ("sleepecg", "nk-neurokit", "nk-kalidas2017")]
    rng = np.random.default_rng(0)
    jittered = [np.sort(rng.integers(0, len(signal), 300))] + marks[1:]  # the first detector misses most beats
    for detections in (marks, jittered, marks[::-1]):
        for got, want in zip(vote(detections, 27), loop_vote(detections, 27)):
            np.testing.assert_array_equal(got, want)
    edges = np.r_[0, 1, 5, len(signal) - 3, len(signal) - 1, rng.integers(0, len(signal), 500)]
    for radius in (1, 18, 27):
        plain = [max(0, q - radius) + int(np.argmax(centred[max(0, q - radius):q + radius + 1])) for q in edges]
        np.testing.assert_array_equal(window_argmax(centred, edges, radius), plain)
    band = qrs_band(signal, rec.fs)
    np.testing.assert_array_equal(qrs_energy(band, rec.fs, edges), [band[max(0, q - 18):q + 19].max() for q in edges])


def test_fusion_of_nothing_is_nothing():
    silent = np.zeros(3600)
    assert len(fuse_detections(silent, 360, [np.array([], int)] * 3)) == 0
    assert len(fuse_detections(silent, 360, [np.array([100, 500]), np.array([], int), np.array([900])])) == 0  # no two agree


def test_find_records_in_folders_globs_and_names(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for f in REC_208.parent.glob("208.*"):
            shutil.copy(f, tmp_path / sub / f.name)
    shutil.copy(EDF_208, tmp_path / "a" / "night.EDF")
    records = find_records([str(tmp_path)])
    assert records == [tmp_path / "a" / "208", tmp_path / "a" / "night.EDF", tmp_path / "b" / "208"]
    assert output_names(records) == ["a_208", "a_night", "b_208"]
    assert find_records([str(tmp_path / "*" / "*.hea"), str(tmp_path / "a" / "208.hea")]) == [tmp_path / "a" / "208", tmp_path / "b" / "208"]
    with pytest.raises(EcgnetError, match="no file matches"):
        find_records([str(tmp_path / "*.xyz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EcgnetError, match="no recordings in this folder"):
        find_records([str(tmp_path / "empty")])


@pytest.mark.slow
def test_a_folder_is_labelled_in_a_pool_and_bad_recordings_do_not_stop_it(tmp_path, capsys):
    from edfio import Edf, EdfSignal
    src = tmp_path / "in"
    shutil.copytree(FIXTURES / "mitdb", src)
    shutil.copy(EDF_208, src / "edf208.edf")
    for f in (FIXTURES / "mitdb").glob("201.*"):                     # a truncated .dat
        shutil.copy(f, src / f.name.replace("201", "cut"))
    (src / "cut.hea").write_text((src / "cut.hea").read_text().replace("201 2 360", "cut 2 360").replace("201.dat", "cut.dat"))
    (src / "cut.dat").write_bytes((src / "cut.dat").read_bytes()[:20000])
    Edf([EdfSignal(np.zeros(3600), 360, label="EEG Fpz-Cz")]).write(src / "eeg.edf")   # no matching lead
    (src / "empty.csv").write_text("")                                                # an empty signal
    code = ecgnet("predict", "--record", src, "--out", tmp_path / "out", "--workers", "2", "--lead", "MLII", "--fs", "360")
    captured = capsys.readouterr()
    assert code == 1 and "5 of 8 recordings labelled" in captured.out
    rows = {r["record"]: r for r in csv.DictReader((tmp_path / "out" / "summary.csv").open())}
    assert sorted(rows) == ["201", "208", "209", "223", "cut", "edf208", "eeg", "empty"]
    assert "the record is truncated" in rows["cut"]["error"] and "no lead named 'MLII'" in rows["eeg"]["error"]
    assert "empty" in rows["empty"]["error"] or "not a numeric" in rows["empty"]["error"] or "shorter" in rows["empty"]["error"]
    for name in ("cut", "eeg", "empty"):
        assert rows[name]["status"] == "failed" and name in captured.err
    assert rows["208"]["irregular_rhythm_share"] == rows["edf208"]["irregular_rhythm_share"] and rows["cut"]["irregular_rhythm_share"] == ""
    assert all(0 <= float(rows[n]["irregular_rhythm_share"]) <= 1 for n in ("201", "208", "209", "223"))
    assert rows["208"]["N"] == rows["edf208"]["N"] and rows["208"]["V"] == rows["edf208"]["V"]
    for name in ("201", "208", "edf208"):
        summary = json.loads((tmp_path / "out" / name / "summary.json").read_text())
        assert summary["classified"] == int(rows[name]["beats"]) and (tmp_path / "out" / name / "strip.png").exists()


def test_a_model_that_does_not_load_in_the_workers_is_one_error_instead_of_a_hang(tmp_path):
    import threading

    from ecgnet.serving.batch import LabelJob, label_many
    job = LabelJob(str(tmp_path / "gone.pt"), "auto", "gqrs", None, None, None, 0.0, 10.0)
    raised = []

    def label():
        try:
            label_many([FIXTURES / "mitdb" / "201", FIXTURES / "mitdb" / "208"], tmp_path / "out", job, 2)
        except EcgnetError as e:
            raised.append(str(e))
    worker = threading.Thread(target=label, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "the pool kept restarting workers that cannot load the model"
    assert len(raised) == 1 and "the model could not be loaded: " in raised[0] and "gone.pt" in raised[0]


def test_a_folder_run_with_a_model_that_does_not_load_is_one_line(tmp_path, capsys):
    code = ecgnet("predict", "--record", FIXTURES / "mitdb", "--out", tmp_path / "cli", "--checkpoint", tmp_path / "gone.pt")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "gone.pt" in err[0], err


def test_each_worker_keeps_numpys_blas_to_its_share_of_the_cores():
    """Two workers whose BLAS each start a thread per core would share two cores four ways (the folder run 1.5x slower)."""
    script = ("from threadpoolctl import threadpool_info\n"
              "from ecgnet.serving.batch import LabelJob, _init_worker\n"
              "_init_worker(LabelJob('mitbih-rr', 'auto', 'fused', None, None, None, 0.0, 10.0), 1)\n"
              "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[1]", done.stderr[-2000:]
