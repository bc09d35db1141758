"""Irregular rhythm (ecgnet.signals.fibrillation) on whole MIT-BIH annotation files, and the S -> N gate."""
import numpy as np
import pytest
import wfdb
from helpers import FIXTURES

from ecgnet.constants import MITBIH, PTBDB
from ecgnet.signals.fibrillation import WINDOW_INTERVALS, TrailingIrregularity, gate_premature, irregular_rhythm
from ecgnet.signals.records import AAMI_CLASS, read_beat_annotations
from ecgnet.signals.rhythm import rhythm_features

RHYTHM = FIXTURES / "rhythm"  # the full reference annotations of four MIT-BIH records (beats and rhythm labels)


def beats_and_rhythm(record: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each beat's R-R interval before it (s), AAMI label, and whether the annotators marked it atrial fibrillation or flutter."""
    samples, labels = read_beat_annotations(RHYTHM / record)
    ann = wfdb.rdann(str(RHYTHM / record), "atr")
    rhythm, current = [], ""
    for symbol, aux in zip(ann.symbol, ann.aux_note):
        if symbol == "+":
            current = aux.strip("\x00")
        elif symbol in AAMI_CLASS:
            rhythm.append(current)
    assert len(rhythm) == len(samples)
    return rhythm_features(samples, 360.0)[:, 0], labels, np.isin(rhythm, ["(AFIB", "(AFL"])


def test_atrial_fibrillation_is_irregular():
    rr, _, af = beats_and_rhythm("221")  # atrial fibrillation for 97% of the record
    flagged = irregular_rhythm(rr)
    assert af.mean() > 0.95 and flagged[af].mean() > 0.9
    rr, _, af = beats_and_rhythm("201")  # fibrillation episodes between other rhythms
    assert af.any() and irregular_rhythm(rr)[af].mean() > 0.95


@pytest.mark.parametrize("record, most", [("232", 0.0), ("209", 0.05)])
def test_premature_beats_in_sinus_rhythm_are_not(record, most):
    """232: sinus bradycardia with 1,382 atrial premature beats and long pauses; 209: frequent premature beats and
    runs of supraventricular tachycardia. Neither is fibrillation, and the S beats must keep their calls."""
    rr, labels, af = beats_and_rhythm(record)
    flagged = irregular_rhythm(rr)
    assert not af.any() and (labels == 1).sum() > 300
    assert flagged.mean() <= most and flagged[labels == 1].mean() <= 2 * most


def test_regular_and_short_sequences():
    rng = np.random.default_rng(0)
    assert not irregular_rhythm(np.full(500, 0.8)).any()
    assert not irregular_rhythm(np.tile([0.5, 1.1], 250)).any()        # bigeminy: alternating, two intervals
    assert irregular_rhythm(rng.uniform(0.4, 1.2, 500)).all()         # intervals at random
    assert irregular_rhythm(rng.uniform(0.4, 1.2, 60)).all()          # shorter than a window: judged as a whole
    assert irregular_rhythm(rng.uniform(0.4, 1.2, 10)).shape == (10,) and not irregular_rhythm(np.array([0.8])).any()
    assert len(irregular_rhythm(rng.uniform(0.4, 1.2, WINDOW_INTERVALS + 7))) == WINDOW_INTERVALS + 7


def test_gate_moves_s_to_n_only_where_irregular():
    probs = np.array([[0.2, 0.7, 0.05, 0.03, 0.02], [0.2, 0.7, 0.05, 0.03, 0.02], [0.1, 0.1, 0.8, 0.0, 0.0]])
    irregular = np.array([True, False, True])
    gated = gate_premature(probs, irregular, MITBIH.class_names)
    np.testing.assert_allclose(gated[0], [0.9, 0.0, 0.05, 0.03, 0.02])
    np.testing.assert_allclose(gated[1:], [[0.2, 0.7, 0.05, 0.03, 0.02], [0.2, 0.0, 0.8, 0.0, 0.0]])
    np.testing.assert_allclose(gated.sum(1), 1.0)
    assert probs[0, 1] == 0.7  # the input is not changed
    two = np.array([[0.3, 0.7]])
    assert gate_premature(two, np.array([True]), PTBDB.class_names) is two


def test_a_stream_is_judged_on_the_intervals_so_far():
    rr, _, af = beats_and_rhythm("221")
    tracker = TrailingIrregularity()
    live = np.array([tracker.update(v) for v in rr])
    assert live[af][WINDOW_INTERVALS:].mean() > 0.9
    end = len(rr) - 1  # the last beat's judgement is the one of the window that ends at it
    assert live[end] == irregular_rhythm(rr[end + 1 - WINDOW_INTERVALS:])[-1]
    tracker = TrailingIrregularity()
    rr, labels, _ = beats_and_rhythm("232")
    assert not any(tracker.update(v) for v in rr)
