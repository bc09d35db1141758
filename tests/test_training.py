import platform
import resource
import sys

import numpy as np
import pytest
import torch
from helpers import train_small

from ecgnet.data.augment import augment_beats, epoch_batches
from ecgnet.data.beatfiles import read_beats
from ecgnet.data.datasets import BUNDLED_DIR
from ecgnet.errors import EcgnetError
from ecgnet.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from ecgnet.models.fastpath import freeze_for_cpu, predict_logits
from ecgnet.models.model import ECGNet
from ecgnet.runtime import configure_process
from ecgnet.serving.inference import Predictor
from ecgnet.serving.scoring import evaluate
from ecgnet.training.optimization import weight_average
from ecgnet.training.reporting import write_test_report


@pytest.mark.slow
def test_training_beats_majority_baseline(trained_run, tmp_path):
    metrics = evaluate(trained_run / "best.pt", BUNDLED_DIR, "cpu")
    # Majority class (N) everywhere: accuracy 0.828, macro-F1 0.181 on this test excerpt.
    assert metrics["macro_f1"] > 0.40
    assert metrics["accuracy"] > 0.90 and metrics["irregular_rhythm_share"] is None   # a beat model: scored as it answers
    assert not list(tmp_path.iterdir()) and not (trained_run / "metrics.json").exists()  # evaluate writes nothing
    write_test_report(metrics, tmp_path)
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "confusion_matrix.png").stat().st_size > 10_000
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_checkpoint_is_self_describing_and_round_trips(quick_run, tmp_path):
    ckpt = load_checkpoint(quick_run / "best.pt")
    for key in ("model_args", "class_names", "config", "epoch", "step", "optimizer", "scheduler", "val_metrics", "versions", "generator",
                "calibration"):
        assert key in ckpt
    assert ckpt["class_names"] == ["N", "S", "V", "F", "Q"]
    x, _ = read_beats(BUNDLED_DIR / "mitbih_test.csv.xz", 5)
    x = torch.from_numpy(x).unsqueeze(1)
    first = predict_logits(model_from_checkpoint(ckpt), x)
    save_checkpoint(tmp_path / "copy.pt", ckpt)
    again = predict_logits(model_from_checkpoint(load_checkpoint(tmp_path / "copy.pt")), x)
    assert torch.equal(first, again)
    probs = Predictor.from_checkpoint(tmp_path / "copy.pt", "cpu").predict_proba(x.numpy())
    expected = (first / ckpt["calibration"]["temperature"]).softmax(1).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)  # frozen graph: fused kernels


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path):
    a = train_small(tmp_path / "a", epochs=2)
    b = train_small(tmp_path / "b", epochs=2)
    drop = lambda h: [{k: v for k, v in r.items() if k not in ("epoch_seconds", "beats_per_second")} for r in h]  # noqa: E731
    assert drop(a["history"]) == drop(b["history"])
    wa, wb = load_checkpoint(tmp_path / "a" / "last.pt")["model"], load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("content, expect", [
    (b"", "truncated or corrupt"),
    (b"not a checkpoint at all", "truncated or corrupt"),
])
def test_corrupt_checkpoints(tmp_path, content, expect):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(EcgnetError, match=expect):
        load_checkpoint(path)


def test_truncated_checkpoint(quick_run, tmp_path):
    data = (quick_run / "best.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(EcgnetError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_foreign_newer_and_mismatched_checkpoints(quick_run, tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(EcgnetError, match="not an ecgnet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    ckpt = load_checkpoint(quick_run / "best.pt")
    torch.save(ckpt | {"format_version": 99}, tmp_path / "newer.pt")
    with pytest.raises(EcgnetError, match="format version 99, newer than"):
        load_checkpoint(tmp_path / "newer.pt")
    wrong = ckpt | {"model_args": ckpt["model_args"] | {"hidden": 64}}
    with pytest.raises(EcgnetError, match="do not match the 'kachuee' architecture"):
        model_from_checkpoint(wrong)
    with pytest.raises(EcgnetError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"kind": "ecgnet-checkpoint", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(EcgnetError, match=r"\(print\) that is not allowed to load"):
        load_checkpoint(tmp_path / "evil.pt")


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    target = tmp_path / "last.pt"
    save_checkpoint(target, {"kind": "ecgnet-checkpoint", "format_version": 1, "n": 1})
    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("fails midway through the write")
    with pytest.raises(RuntimeError, match="midway"):
        save_checkpoint(target, {"kind": "ecgnet-checkpoint", "format_version": 1, "bad": Unsaveable()})
    assert load_checkpoint(target)["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_augmentation_keeps_shape_and_identity_at_zero():
    x, _ = read_beats(BUNDLED_DIR / "mitbih_test.csv.xz", 5)
    xb = torch.from_numpy(x[:16]).unsqueeze(1)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(augment_beats(xb, g, amplitude=0, stretch=0), xb, atol=1e-6)
    out = augment_beats(xb, g)
    assert out.shape == xb.shape and not torch.allclose(out, xb)


def test_balanced_batches_even_out_classes():
    _, y = read_beats(BUNDLED_DIR / "mitbih_train.csv.xz", 5)
    y = torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    drawn = torch.cat(epoch_batches(y, 256, g, balanced=True))
    share = torch.bincount(y[drawn], minlength=5).double() / len(drawn)
    assert len(drawn) == len(y) and share.min() > 0.15
    perm = torch.cat(epoch_batches(y, 256, g, balanced=False))
    assert torch.equal(perm.sort().values, torch.arange(len(y)))


def test_disk_full_while_saving_keeps_previous_checkpoint(tmp_path, monkeypatch):
    import errno
    target = tmp_path / "best.pt"
    save_checkpoint(target, {"kind": "ecgnet-checkpoint", "format_version": 1, "n": 1})

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(EcgnetError, match="could not save checkpoint .*No space left on device.*previous best.pt is intact"):
        save_checkpoint(target, {"n": 2})
    monkeypatch.undo()
    assert load_checkpoint(target)["n"] == 1 and [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_frozen_cpu_inference_matches_eager(quick_run):
    model = model_from_checkpoint(load_checkpoint(quick_run / "best.pt"))
    x, _ = read_beats(BUNDLED_DIR / "mitbih_test.csv.xz", 5)
    x = torch.from_numpy(x).unsqueeze(1)
    eager = predict_logits(model, x, batch_size=128)
    fast = predict_logits(model, x, frozen=freeze_for_cpu(model))
    torch.testing.assert_close(fast, eager, rtol=1e-5, atol=1e-5)
    assert torch.equal(predict_logits(model, x[:3], frozen=freeze_for_cpu(model)), predict_logits(model, x[:3]))


def test_weight_average_warms_up_then_follows_the_decay():
    torch.manual_seed(0)
    model = ECGNet()
    ema = weight_average(model, 0.9)
    p, avg = model.stem.bias, ema.module.stem.bias
    with torch.no_grad():
        ema.update_parameters(model)              # first update copies
        assert torch.equal(avg, p)
        start = p.clone()
        p.add_(1.0)
        ema.update_parameters(model)              # n=1: decay min(0.9, 2/11)
        torch.testing.assert_close(avg, start + (1 - 2 / 11))
        for _ in range(200):
            ema.update_parameters(model)          # decay reaches 0.9; the average converges to p
        torch.testing.assert_close(avg, p)
    assert weight_average(model, 0.0) is None


@pytest.mark.slow
def test_checkpoints_hold_averaged_and_raw_weights(trained_run, tmp_path):
    best = load_checkpoint(trained_run / "best.pt")
    assert best["config"]["ema_decay"] > 0
    assert any(not torch.equal(best["model"][k], best["train_model"][k]) for k in best["model"])
    train_small(tmp_path / "raw", epochs=1, ema_decay=0.0)
    raw = load_checkpoint(tmp_path / "raw" / "best.pt")
    assert raw["train_model"] is None and "val_raw_accuracy" not in raw["history"][0]
    assert "val_raw_accuracy" in best["history"][0]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc allocator setting")
def test_cpu_training_steps_reuse_freed_memory():
    # With glibc's defaults every training step page-faults its activations and
    # gradients in afresh (thousands of faults per step at batch 128); after
    # configure_process the heap keeps them and warmed-up steps fault almost never.
    configure_process(2, "cpu")
    model, x, y = ECGNet(), torch.rand(128, 1, 187), torch.zeros(128, dtype=torch.long)

    def faults_in_three_steps() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            torch.nn.functional.cross_entropy(model(x), y).backward()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults_in_three_steps(), faults_in_three_steps()  # the heap grows to its working size
    # The median of 5 rounds: with glibc's defaults it is about 7,400 faults.
    assert sorted(faults_in_three_steps() for _ in range(5))[2] < 300


def test_random_bytes_are_never_a_traceback(tmp_path):
    # torch's weights-only unpickler raises IndexError / KeyError on some byte strings; all must be one clean error.
    rng = np.random.default_rng(0)
    path = tmp_path / "random.pt"
    for size in rng.integers(10, 8192, 200):
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        with pytest.raises(EcgnetError, match="truncated or corrupt|not an ecgnet checkpoint|not allowed to load"):
            load_checkpoint(path)


def test_focal_loss_against_hand_computed_values():
    from ecgnet.training.loss import BeatLoss
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 2, 2])
    weight = torch.tensor([1.0, 2.0, 4.0])
    for w in (None, weight):  # gamma 0 is cross-entropy, weighted or not
        torch.testing.assert_close(BeatLoss(w)(logits, labels), torch.nn.functional.cross_entropy(logits, labels, weight=w))
    p_true = torch.tensor([np.exp(2) / (np.exp(2) + 2), np.exp(-1) / (1 + np.e + np.exp(-1)),
                           np.exp(3) / (np.exp(3) + 2 * np.exp(0.5))], dtype=torch.float32)
    terms = -(1 - p_true) ** 2 * p_true.log()
    torch.testing.assert_close(BeatLoss(None, 2.0)(logits, labels), terms.mean())
    torch.testing.assert_close(BeatLoss(weight, 2.0)(logits, labels), (terms * torch.tensor([1.0, 4.0, 4.0])).sum() / 9)
    # the badly classified beat (p_true 0.09) keeps most of its loss, the well classified ones lose most of theirs
    ce = -p_true.log()
    kept = BeatLoss(None, 2.0)(logits[1:2], labels[1:2]) / ce[1]
    assert kept > 0.8 and BeatLoss(None, 2.0)(logits[:1], labels[:1]) / ce[0] < 0.1


def test_focal_training_logs_the_focal_validation_loss(tmp_path):
    from ecgnet.config import Config
    from ecgnet.constants import TASKS
    from ecgnet.data.datasets import load_splits
    from ecgnet.training.evaluation import evaluate_model
    from ecgnet.training.loss import BeatLoss
    from ecgnet.training.trainer import train
    splits = load_splits(TASKS["mitbih"], BUNDLED_DIR, 0.1, 0.2, 0)
    cfg = Config(data_dir=str(BUNDLED_DIR), epochs=1, batch_size=256, focal_gamma=2.0, imbalance="class_weights",
                 log_dir=str(tmp_path), run_name="focal", ema_decay=0.0)
    summary = train(cfg, splits)
    model = model_from_checkpoint(load_checkpoint(tmp_path / "focal" / "best.pt"))
    weight = torch.tensor(len(splits.train) / (5 * splits.train.class_counts()), dtype=torch.float32)
    focal = evaluate_model(model, splits.val, loss_fn=BeatLoss(weight, 2.0))["loss"]
    plain = evaluate_model(model, splits.val)["loss"]
    assert summary["history"][0]["val_loss"] == pytest.approx(focal, rel=1e-4) and focal < plain


def test_class_weights_and_their_square_root():
    from ecgnet.config import Config
    from ecgnet.constants import TASKS
    from ecgnet.data.datasets import load_splits
    from ecgnet.training.loss import class_weights
    splits = load_splits(TASKS["mitbih"], BUNDLED_DIR, 0.1, 0.2, 0)
    counts = splits.train.class_counts()
    full = class_weights(splits, Config(imbalance="class_weights"), torch.device("cpu"))
    half = class_weights(splits, Config(imbalance="sqrt_class_weights"), torch.device("cpu"))
    torch.testing.assert_close(full, torch.tensor(len(splits.train) / (5 * counts), dtype=torch.float32))
    torch.testing.assert_close(half, full.sqrt())
    assert full.argmax() != 0 and class_weights(splits, Config(), torch.device("cpu")) is None
    capped = class_weights(splits, Config(imbalance="class_weights", class_weight_cap=3.0), torch.device("cpu"))
    torch.testing.assert_close(capped, torch.minimum(full, 3 * full.min()))
    assert torch.isclose(capped.max(), 3 * full.min()) and capped.max() < full.max()
