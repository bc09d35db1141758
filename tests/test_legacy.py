"""Checkpoints and model files written by ecgnet 0.3, before ensembles and pooled models became one combined model,
load as that model and answer as they did (fixtures written by that version): the same labels, and probabilities
within float32 rounding (a member's head now reads its own features, not a slice of all members' features; batches
of 64 beats and more, which run the frozen graph, give the same bits)."""
import numpy as np
import pytest
from helpers import FIXTURES

from ecgnet.models.checkpoint import load_checkpoint, model_from_checkpoint
from ecgnet.models.pretrained import resolve_checkpoint
from ecgnet.serving.inference import Predictor

LEGACY = FIXTURES / "legacy"


def same_answers(probs: np.ndarray, then: np.ndarray) -> None:
    assert np.array_equal(probs.argmax(1), then.argmax(1))
    np.testing.assert_allclose(probs, then, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def expected():
    return np.load(LEGACY / "expected-0.3.npz")


def test_an_ensemble_checkpoint_of_0_3_loads_as_a_mean_combined_model(expected):
    ckpt = load_checkpoint(LEGACY / "ensemble-0.3.pt")  # its checksum, over the old entries, still verifies
    assert ckpt["model_name"] == "combined" and ckpt["model_args"]["rule"] == "mean"
    assert [m["model_name"] for m in ckpt["model_args"]["members"]] == ["kachuee_rr", "kachuee_rr"]
    model = model_from_checkpoint(ckpt)
    assert model.temperatures.tolist() == pytest.approx([0.8, 1.3])
    same_answers(Predictor(ckpt, "cpu").predict_proba(expected["beats"], expected["rhythm"]), expected["ensemble"])


def test_the_shipped_pooled_model_file_of_0_3_loads_as_a_product_of_a_mean_and_the_linear_model(expected):
    ckpt = resolve_checkpoint("mitbih-rr-ensemble")  # the pool shipped in 0.3 as mitbih-rr
    assert ckpt["card"]["model_name"] == "pooled"                       # the file as shipped, unchanged
    args = ckpt["model_args"]
    assert ckpt["model_name"] == "combined" and args["rule"] == "product"
    assert [m["model_name"] for m in args["members"]] == ["combined", "linear_rr"]
    assert args["members"][0]["model_args"]["rule"] == "mean" and len(args["members"][0]["model_args"]["members"]) == 5
    same_answers(Predictor(ckpt, "cpu").predict_proba(expected["beats"], expected["rhythm"]), expected["mitbih_rr"])
