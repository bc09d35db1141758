"""Record-wise cross-validation folds and out-of-fold decision offsets, on real MIT-BIH annotations."""
import numpy as np
import pytest
from helpers import FIXTURES

from ecgnet.constants import TASKS
from ecgnet.errors import EcgnetError
from ecgnet.metrics import macro_f1
from ecgnet.signals.records import read_beat_annotations
from ecgnet.training.crossval import fit_class_offsets, record_folds

MITBIH = TASKS["mitbih"]
RECORDS = ("201", "208", "209", "223")  # one-minute excerpts; S in all four, V in 201, 208, 223
SCORED = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def beats():
    records, labels = [], []
    for name in RECORDS:
        _, y = read_beat_annotations(FIXTURES / "mitdb" / name)
        records += [name] * len(y)
        labels.append(y)
    return np.array(records), np.concatenate(labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_record_is_validated_once_and_never_trained_on_there(beats, seed):
    records, labels = beats
    folds = record_folds(records, labels, 2, seed, MITBIH.holdout_classes)
    val_rows = np.concatenate([val for _, val in folds])
    assert np.array_equal(np.sort(val_rows), np.arange(len(records)))        # each beat out-of-fold exactly once
    for train_rows, val in folds:
        assert not set(records[train_rows]) & set(records[val])             # no record on both sides
        assert len(train_rows) + len(val) == len(records)
        assert all((labels[val] == c).any() for c in MITBIH.holdout_classes)  # S and V in every fold's validation
    again = record_folds(records, labels, 2, seed, MITBIH.holdout_classes)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))


def test_impossible_folds_are_refused(beats):
    records, labels = beats
    with pytest.raises(EcgnetError, match=r"needs 2 <= folds <= 4 records, got 5"):
        record_folds(records, labels, 5, 0)
    with pytest.raises(EcgnetError, match="fold .* of 4 holds no beat of class"):
        record_folds(records, labels, 4, 0, (2,))  # V is in three of the four records


def test_offsets_undo_a_bias_against_a_class(beats):
    _, labels = beats
    rng = np.random.default_rng(0)
    log_probs = np.log(np.full((len(labels), MITBIH.n_classes), 0.05))
    log_probs[np.arange(len(labels)), labels] = np.log(0.8)
    log_probs += rng.normal(0, 0.5, log_probs.shape)
    log_probs[:, 1] -= 3.0                                     # a model that under-calls S
    before = macro_f1(labels, log_probs.argmax(1), SCORED)
    offsets = fit_class_offsets(log_probs, labels, SCORED)
    after = macro_f1(labels, (log_probs + offsets).argmax(1), SCORED)
    assert offsets[0] == 0 and offsets[4] == 0                 # the reference and the unscored class stay
    assert 2.0 <= offsets[1] <= 4.5 and after > before + 0.1
    unbiased = log_probs.copy()
    unbiased[:, 1] += 3.0
    assert np.abs(fit_class_offsets(unbiased, labels, SCORED)).max() <= 1.0  # nothing to undo: offsets stay near 0
