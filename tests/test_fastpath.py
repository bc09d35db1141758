"""The CPU fast paths compute what the plain model computes: forward, input and weight gradients, frozen graph."""
import torch
import torch.nn.functional as F

from ecgnet.models.fastpath import CPUForward, freeze_for_cpu
from ecgnet.models.model import ECGNet


def plain_and_fast(seed: int):
    torch.manual_seed(seed)
    model = ECGNet().train()
    return model, CPUForward(model)


def test_training_forward_matches_plain_model():
    model, fast = plain_and_fast(0)
    x = torch.rand(9, 1, 187)
    torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-6)


def test_weight_gradients_match_plain_model():
    model, fast = plain_and_fast(1)
    x = torch.rand(6, 1, 187)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    F.cross_entropy(fast(x), target).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    F.cross_entropy(model(x), target).backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)


def test_input_gradient_matches_plain_model():
    # Saliency maps need d(logit)/d(beat) through the GEMM stem and the custom conv backward.
    model, fast = plain_and_fast(2)
    x = torch.rand(5, 1, 187, requires_grad=True)
    (got,) = torch.autograd.grad(fast(x)[:, 1].sum(), x)
    (want,) = torch.autograd.grad(model(x)[:, 1].sum(), x)
    assert got.shape == x.shape and got.abs().sum() > 0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_eval_mode_and_no_grad_use_the_plain_arithmetic():
    model, fast = plain_and_fast(3)
    x = torch.rand(7, 1, 187)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-6)   # train mode without gradients
    model.eval()
    assert torch.equal(fast(x), model(x))                                     # eval: the 2-D layout, bit for bit


def test_trunk_activations_stay_channels_last_in_training():
    # One NCHW layer would silently turn every later one NCHW (as a one-channel 2-D conv stem does).
    model, fast = plain_and_fast(4)
    captured = []
    for block in model.blocks:
        block.conv2.register_forward_hook(lambda m, i, o: captured.append(o))
    x = torch.rand(4, 1, 187)
    fast(x).sum().backward()  # the hooks do not fire: the fast path never calls the modules
    assert not captured
    from ecgnet.models.fastpath import _conv
    h = _conv(x.unsqueeze(2), model.stem, training=True)
    assert h.shape == (4, 32, 1, 187) and h.is_contiguous(memory_format=torch.channels_last)
    h2 = _conv(h, model.blocks[0].conv1, training=True)
    assert h2.is_contiguous(memory_format=torch.channels_last)


def test_frozen_graph_matches_eager():
    model, _ = plain_and_fast(5)
    model.eval()
    x = torch.rand(300, 1, 187)
    frozen = freeze_for_cpu(model)
    with torch.no_grad():
        torch.testing.assert_close(torch.cat([frozen(c) for c in x.split(256)]), model(x), rtol=1e-5, atol=1e-5)
