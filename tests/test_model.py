"""The paper's network: Fig. 2 shapes, parameter count, the timm-style trunk/head split."""
import torch

from ecgnet.models.model import ECGNet, count_parameters, freeze_trunk, trunk_length


def test_parameter_count_matches_paper():
    assert count_parameters(ECGNet(n_classes=5)) == 55013
    assert count_parameters(ECGNet(n_classes=2)) == 55013 - 3 * 33


def test_shapes_follow_the_figure():
    model = ECGNet()
    x = torch.rand(9, 1, 187)
    h = model.stem(x)
    lengths = []
    for block in model.blocks:
        h = block(h)
        lengths.append(h.shape[-1])
    assert lengths == [92, 44, 20, 8, 2] and trunk_length() == 2
    assert model.forward_features(x).shape == (9, 64) and model(x).shape == (9, 5)
    torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x)))


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
