"""``ecgnet score``: beat-by-beat comparison with reference annotations (bxb / EC57), on real MIT-BIH excerpts."""
import json
import shutil

import numpy as np
import pytest
from helpers import FIXTURES, ecgnet

from ecgnet.serving.bxb import compare_record, statistics
from ecgnet.serving.inference import Predictor
from ecgnet.serving.labelling import label_record
from ecgnet.signals.records import read_beat_annotations, read_recording

REC_208 = FIXTURES / "mitdb" / "208"
N, S, V, F, Q = range(5)
NAMES = ["N", "S", "V", "F", "Q"]


def test_a_hand_counted_comparison():
    # 360 Hz: the window is 54 samples. 200 (S) finds nothing within it: missed; 260 and 900 match nothing: extra.
    probs = np.eye(5)[[N, N, V, S, V]] * 0.5 + 0.1   # each call at confidence 0.6
    c = compare_record(np.array([100, 200, 300, 400]), np.array([N, S, V, N]), np.array([102, 260, 300, 401, 900]), probs, 360.0)
    s = statistics(c, NAMES)
    assert s["detection"] == {"tp": 3, "fn": 1, "fp": 2, "se": 75.0, "ppv": 60.0}
    assert s["confusion"][N][N] == 1 and s["confusion"][N][S] == 1 and s["confusion"][V][V] == 1
    assert s["missed_per_class"] == [0, 1, 0, 0, 0] and s["extra_per_class"] == [1, 0, 1, 0, 0]
    pc = s["per_class"]
    assert (pc["N"]["se"], pc["N"]["ppv"]) == (50.0, 50.0)          # 1 of 2 N found; 1 of 2 N calls right (one extra)
    assert (pc["S"]["se"], pc["S"]["ppv"]) == (0.0, 0.0)
    assert (pc["V"]["se"], pc["V"]["ppv"]) == (100.0, 50.0)         # the extra V call counts against +P
    assert s["n_called_s"] == 50.0 and s["n_called_v"] == 0.0 and s["accuracy"] == pytest.approx(100 * 2 / 4)
    assert s["ece"] == pytest.approx(abs(0.6 - 2 / 3))                # 3 matched beats at 0.6, 2 of them right


def independent_confusion(record, predictor) -> np.ndarray:
    """Nearest labelled beat within 150 ms of each reference beat, counted by hand (no WFDB matching)."""
    rec = read_recording(record)
    table = label_record(predictor, rec)["table"]
    calls = np.stack([table[f"p_{c}"] for c in NAMES], 1).argmax(1)
    ref, labels = read_beat_annotations(record)
    confusion, used = np.zeros((5, 5), int), set()
    for r, true in zip(ref, labels):
        distance = np.abs(table["sample"] - r)
        j = int(distance.argmin())
        if distance[j] <= round(0.15 * rec.fs) and j not in used:
            used.add(j)
            confusion[true, calls[j]] += 1
    return confusion


@pytest.mark.slow
def test_score_agrees_with_an_independent_count_on_a_real_record(tmp_path, capsys):
    assert ecgnet("score", REC_208, "--out", tmp_path / "s", "--workers", "1") == 0
    result = json.loads((tmp_path / "s" / "score.json").read_text())
    expected = independent_confusion(REC_208, Predictor.from_checkpoint("mitbih-rr", "cpu"))
    assert np.array_equal(result["gross"]["confusion"], expected) and expected.sum() > 90
    assert result["records"]["208"]["detection"]["se"] > 95
    assert (tmp_path / "s" / "score.csv").read_text().splitlines()[-1].startswith("gross,")
    assert "pooled confusion" in capsys.readouterr().out
    # the same beats.csv, scored again from its folder, gives the same figures
    assert ecgnet("score", REC_208, "--labels", tmp_path / "s" / "labels", "--out", tmp_path / "again") == 0
    assert json.loads((tmp_path / "again" / "score.json").read_text())["gross"] == result["gross"]


@pytest.mark.slow
def test_another_sampling_rate_is_matched_in_its_own_samples(tmp_path):
    import wfdb
    from scipy.signal import resample_poly
    rec = read_recording(REC_208)
    signal = resample_poly(rec.signal, 16, 45)                       # 360 -> 128 Hz, as the SVDB records
    wfdb.wrsamp("r128", fs=128, units=["mV"], sig_name=["MLII"], p_signal=signal[:, None], fmt=["16"], write_dir=str(tmp_path))
    ann = wfdb.rdann(str(REC_208), "atr")
    wfdb.wrann("r128", "atr", np.round(ann.sample * 128 / 360).astype(int), np.asarray(ann.symbol), write_dir=str(tmp_path))
    assert ecgnet("score", tmp_path / "r128", "--out", tmp_path / "s", "--workers", "1") == 0
    gross = json.loads((tmp_path / "s" / "score.json").read_text())["gross"]
    assert gross["detection"]["se"] > 95 and gross["detection"]["ppv"] > 95


def test_an_empty_beats_file_scores_every_reference_beat_missed(tmp_path):
    (tmp_path / "labels" / "208").mkdir(parents=True)
    (tmp_path / "labels" / "208" / "beats.csv").write_text("time_s,sample,class,name,probability,p_N,p_S,p_V,p_F,p_Q\n")
    assert ecgnet("score", REC_208, "--labels", tmp_path / "labels", "--out", tmp_path / "s") == 0
    gross = json.loads((tmp_path / "s" / "score.json").read_text())["gross"]
    assert gross["detection"]["tp"] == 0 and gross["detection"]["fn"] == gross["reference_beats"] == len(read_beat_annotations(REC_208)[0])


@pytest.mark.parametrize("case, expect", [
    ("no_annotations", "no reference annotation file 208.qrs; name its extension with --ann"),
    ("not_wfdb", "no WFDB record in"),
    ("no_labels", "not found: label the record first"),
    ("ptb_labels", "are not the AAMI beat classes"),
])
def test_bad_inputs_are_one_line_exit_2(tmp_path, capsys, case, expect):
    args = [REC_208, "--out", tmp_path / "s"]
    if case == "no_annotations":
        args += ["--ann", "qrs"]
    elif case == "not_wfdb":
        (tmp_path / "x.csv").write_text("1\n2\n")
        args = [tmp_path / "x.csv", "--out", tmp_path / "s"]
    elif case == "no_labels":
        args += ["--labels", tmp_path / "nothing"]
    else:
        (tmp_path / "l" / "208").mkdir(parents=True)
        (tmp_path / "l" / "208" / "beats.csv").write_text("time_s,sample,class,name,probability,p_normal,p_MI\n1.0,360,0,normal,0.9,0.9,0.1\n")
        args += ["--labels", tmp_path / "l"]
    assert ecgnet("score", *args) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1, err


def test_a_record_without_its_annotation_file_is_refused_before_labelling(tmp_path, capsys):
    for suffix in (".hea", ".dat"):
        shutil.copy(REC_208.with_suffix(suffix), tmp_path / f"208{suffix}")
    assert ecgnet("score", tmp_path / "208", "--out", tmp_path / "s") == 2
    assert "no reference annotation file 208.atr" in capsys.readouterr().err and not (tmp_path / "s").exists()
