import torch
import torch.nn.functional as F

from ecgnet.model import ECGNet, count_parameters, freeze_trunk


def reference_forward(model: ECGNet, x: torch.Tensor) -> torch.Tensor:
    """The paper's net written with plain F.conv1d / F.max_pool1d on (B, C, L) tensors."""
    h = F.conv1d(x, model.stem.weight, model.stem.bias, padding=2)
    lengths = []
    for block in model.blocks:
        y = F.conv1d(F.relu(F.conv1d(h, block.conv1.weight, block.conv1.bias, padding=2)), block.conv2.weight, block.conv2.bias, padding=2)
        h = F.max_pool1d(F.relu(h + y), 5, 2)
        lengths.append(h.shape[-1])
    assert lengths == [92, 44, 20, 8, 2]
    return model.head(h.flatten(1))


def test_parameter_count_matches_paper():
    assert count_parameters(ECGNet(n_classes=5)) == 55013
    assert count_parameters(ECGNet(n_classes=2)) == 55013 - 3 * 33


def test_shapes_and_equality_with_conv1d_reference():
    torch.manual_seed(0)
    model = ECGNet()
    x = torch.rand(9, 1, 187)
    assert model.forward_features(x).shape == (9, 64)
    assert model(x).shape == (9, 5)
    torch.testing.assert_close(model(x), reference_forward(model, x), rtol=1e-5, atol=1e-6)
    model.eval()  # the stem switches to the 2-D convolution that inference graphs fuse best
    torch.testing.assert_close(model(x), reference_forward(model, x), rtol=1e-5, atol=1e-6)


def test_conv_weights_keep_conv1d_shapes():
    sd = ECGNet().state_dict()
    assert sd["stem.weight"].shape == (32, 1, 5)
    assert sd["blocks.0.conv1.weight"].shape == (32, 32, 5)


def test_reset_classifier_keeps_trunk_and_replaces_head():
    torch.manual_seed(0)
    model = ECGNet(n_classes=5)
    trunk_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    model.reset_classifier(2)
    x = torch.rand(3, 1, 187)
    assert model(x).shape == (3, 2) and model.n_classes == 2
    for k, v in trunk_before.items():
        assert torch.equal(model.state_dict()[k], v)


def test_freeze_trunk_leaves_only_head_trainable():
    model = ECGNet(n_classes=2)
    freeze_trunk(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") for n in trainable)
    assert count_parameters(model, trainable_only=True) == 2080 + 1056 + 66


def test_gradients_match_conv1d_reference():
    torch.manual_seed(1)
    model = ECGNet()
    x = torch.rand(6, 1, 187)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    F.cross_entropy(model(x), target).backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    F.cross_entropy(reference_forward(model, x), target).backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(fast[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)


def test_input_gradient_matches_conv1d_reference():
    # Saliency maps need d(logit)/d(beat) through the GEMM stem and the custom conv backward.
    torch.manual_seed(2)
    model = ECGNet()
    x = torch.rand(5, 1, 187, requires_grad=True)
    (fast,) = torch.autograd.grad(model(x)[:, 1].sum(), x)
    (reference,) = torch.autograd.grad(reference_forward(model, x)[:, 1].sum(), x)
    assert fast.shape == x.shape and fast.abs().sum() > 0
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-6)


def test_trunk_activations_stay_channels_last():
    # The trunk trains ~1.2x faster channels-last; one NCHW layer would silently turn
    # every later one NCHW too (as a one-channel 2-D conv stem once did).
    model = ECGNet().train()
    h = model.stem(torch.rand(4, 1, 187))
    assert h.shape == (4, 32, 1, 187) and h.is_contiguous(memory_format=torch.channels_last)
    for block in model.blocks:
        h = block(h)
        assert h.is_contiguous(memory_format=torch.channels_last), h.shape
