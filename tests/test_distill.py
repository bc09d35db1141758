"""Knowledge distillation (``ecgnet.training.distill``): one network learning a folds' pool's networks, on real MIT-BIH
excerpts; the soft-target loss; refusals."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import ecgnet

from ecgnet.config import Config
from ecgnet.constants import TASKS
from ecgnet.data.datasets import load_files
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import load_checkpoint, model_from_checkpoint
from ecgnet.models.fastpath import predict_logits
from ecgnet.training.assemble import pool_experts
from ecgnet.training.crossval import train_folds
from ecgnet.training.distill import teacher_networks, teacher_probabilities, train_student
from ecgnet.training.distributed import World
from ecgnet.training.evaluation import model_inputs
from ecgnet.training.loss import BeatLoss, training_loss
from ecgnet.training.sources import ResidentSource

MITBIH = TASKS["mitbih"]
COMMON = dict(model="kachuee_rrt", batch_size=32, lr=3e-3, num_threads=1, device="cpu", patience=0, linear_expert=True)


@pytest.fixture(scope="module")
def teacher(interpatient_data, tmp_path_factory):
    cfg = Config(**COMMON, epochs=6, imbalance="class_weights", folds=2, data_dir=str(interpatient_data),
                 log_dir=str(tmp_path_factory.mktemp("teacher")), run_name="pool").validate()
    return train_folds(cfg, 2)["run_dir"] / "best.pt"


@pytest.fixture(scope="module")
def student(teacher, interpatient_data, tmp_path_factory):
    cfg = Config(**COMMON, epochs=6, teacher=str(teacher), data_dir=str(interpatient_data), val_fraction=0.3,
                 log_dir=str(tmp_path_factory.mktemp("student")), run_name="one").validate()
    return train_student(cfg)["run_dir"]


def test_soft_targets_are_the_cross_entropy_of_the_teachers_probabilities():
    torch.manual_seed(0)
    logits, teacher = torch.randn(8, 5), torch.randn(8, 5).softmax(1)
    expected = -(teacher * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(BeatLoss()(logits, teacher), expected)
    labels = torch.randint(0, 5, (8,))  # one-hot probabilities are the labels' cross-entropy
    torch.testing.assert_close(BeatLoss()(logits, F.one_hot(labels, 5).float()), BeatLoss()(logits, labels))
    weighted = Config(imbalance="class_weights", teacher="mitbih-rr")
    assert training_loss(None, weighted, torch.device("cpu")).weight is None  # the teacher carries the class balance


@pytest.mark.slow
def test_the_student_trains_on_the_teachers_probabilities(teacher, interpatient_data):
    data = load_files(interpatient_data, MITBIH.train_stems, MITBIH)
    networks = teacher_networks(load_checkpoint(teacher))
    assert networks["model_name"] == "combined" and networks["model_args"]["rule"] == "mean"   # the folds' ensemble only
    data.targets = teacher_probabilities(networks, data, "excerpts")
    model = model_from_checkpoint(networks).eval()
    inputs = model_inputs(model, data, "excerpts")
    torch.testing.assert_close(data.targets, predict_logits(model, inputs.x, rhythm=inputs.rhythm).softmax(1))
    cfg = Config(**COMMON, teacher=str(teacher), augment=False)
    source = ResidentSource(inputs.subset(np.arange(len(data))), cfg, torch.device("cpu"), World(), torch.Generator().manual_seed(0), True)
    seen = torch.cat([yb for _, yb, _ in source.batches(0)])
    assert seen.shape == (len(data), 5) and torch.allclose(seen.sum(1), torch.ones(len(data)))
    torch.testing.assert_close(seen.sort(0).values, data.targets.sort(0).values)  # every beat once, its teacher's row


@pytest.mark.slow
def test_the_student_is_one_network_pooled_with_the_linear_model(student, teacher, interpatient_data):
    pooled = load_checkpoint(student / "best.pt")
    network, linear = pool_experts(pooled)
    assert network["model_name"] == "kachuee_rrt" and linear["model_name"] == "linear_rr"
    assert pooled["split"]["teacher"] == str(teacher)
    assert "ece_out_of_fold" in pooled["calibration"]  # fitted on the student's validation patients
    data = load_files(interpatient_data, MITBIH.train_stems, MITBIH)
    targets = teacher_probabilities(teacher_networks(load_checkpoint(teacher)), data, "excerpts")
    mine = teacher_probabilities(network, data, "excerpts")
    assert (mine.argmax(1) == targets.argmax(1)).float().mean() > 0.8  # it learnt its teacher's calls
    assert ecgnet("test", "--checkpoint", student / "best.pt", "--data-dir", interpatient_data) == 0


@pytest.mark.parametrize("keys, message", [
    (dict(folds=2), "key 'teacher' trains one model on resident data"),
    (dict(focal_gamma=2.0), "key 'teacher' trains one model on resident data"),
])
def test_bad_teacher_configs_are_refused(keys, message):
    with pytest.raises(EcgnetError, match=message):
        Config(teacher="mitbih-rr", **keys).validate()


def test_a_teacher_of_other_beats_is_one_line_exit_2(interpatient_data, tmp_path, capsys):
    # the shipped mitbih-rr read beats cut 0.25 s before R at GQRS detections; these excerpts are cut at annotations
    code = ecgnet("train", "--data-dir", interpatient_data, "--set", "teacher=mitbih-rr", "--set", "model=kachuee_rrt",
                  "--set", "split_by=patients", "--log-dir", tmp_path, "--epochs", "1")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "teacher mitbih-rr read beats cut as" in err[0] and "prepare the data" in err[0]
