"""A beat in context, built once (``ecgnet.signals.context``): ``predict --record`` (and the web page, which calls the
same ``label_record``: tests/test_webapp.py), the Python API, the ONNX predictor, the stream and ``ecgnet test``
(tests/test_rhythm.py) give a beat the same label, with S calls in irregular rhythm made N by the predictor itself."""
import numpy as np
import pytest
from helpers import FIXTURES, ecgnet

from ecgnet.constants import DEFAULT_DETECTOR
from ecgnet.serving.inference import Predictor
from ecgnet.serving.labelling import label_record
from ecgnet.signals.context import BeatContext
from ecgnet.signals.fibrillation import TrailingIrregularity
from ecgnet.signals.preprocess import check_signal, cut_detected_beats
from ecgnet.signals.records import read_recording
from ecgnet.signals.streaming import BeatStream, stream_context

REC_208 = FIXTURES / "mitdb" / "208"   # its first minute: atrial-fibrillation-like irregular rhythm with frequent ectopy


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_checkpoint("mitbih-rr", "cpu")


@pytest.fixture(scope="module")
def record(predictor):
    rec = read_recording(REC_208)
    cut, samples = cut_detected_beats(check_signal(rec.signal, rec.fs, rec.name), rec.fs, DEFAULT_DETECTOR, predictor.before_r_s)
    context, _ = BeatContext.of_recording(cut.beats, samples, cut.index, rec.fs)
    return rec, context, label_record(predictor, rec)


def test_the_api_labels_a_recordings_beats_as_predict_record_does(predictor, record):
    _, context, offline = record
    np.testing.assert_array_equal(predictor.predict(context), offline["table"]["name"])
    np.testing.assert_array_equal(context.irregular.astype(int), offline["table"]["irregular_rhythm"])
    assert context.irregular.any() and not (offline["table"]["name"][context.irregular] == "S").any()


def test_the_predictor_applies_the_irregular_rhythm_rule_itself(predictor, record):
    _, context, _ = record
    unknown = BeatContext(context.beats, context.rhythm, context.template, None)    # irregularity not known: no rule
    raw, labelled = predictor.predict_proba(unknown), predictor.predict_proba(context)
    s, n = predictor.class_names.index("S"), predictor.class_names.index("N")
    np.testing.assert_allclose(labelled[context.irregular, n], raw[context.irregular, n] + raw[context.irregular, s], rtol=1e-6)
    assert (labelled[context.irregular, s] == 0).all()
    np.testing.assert_array_equal(labelled[~context.irregular], raw[~context.irregular])


def test_the_stream_labels_each_beat_in_its_own_context(predictor):
    rec = read_recording(REC_208)
    stream = BeatStream(rec.fs, DEFAULT_DETECTOR, predictor.before_r_s, wait_for_next_beat=True, keep_templates=True)
    beats = []
    for i in range(0, len(rec.signal), 500):
        beats += stream.push(rec.signal[i:i + 500])
    beats += stream.finish()
    trailing = TrailingIrregularity()
    expected = [trailing.update(b.rhythm[0]) for b in beats]
    context = stream_context(beats)
    assert context.irregular.tolist() == expected and any(expected)
    np.testing.assert_array_equal(context.templates, np.stack([b.template for b in beats]))
    assert not (predictor.predict(context)[context.irregular] == "S").any()


@pytest.mark.slow
def test_the_onnx_predictor_labels_the_same_context_alike(predictor, record, tmp_path):
    from ecgnet.serving.onnx_backend import OnnxPredictor
    assert ecgnet("export", "--checkpoint", "mitbih-rr", "--onnx", tmp_path / "rr.onnx") == 0
    _, context, offline = record
    onnx = OnnxPredictor(tmp_path / "rr.onnx")
    np.testing.assert_allclose(onnx.predict_proba(context), predictor.predict_proba(context), atol=1e-5)
    np.testing.assert_array_equal(onnx.predict(context), offline["table"]["name"])
