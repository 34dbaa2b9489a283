"""One pass that stops early, layer selection, memory formats, autocast, 1-channel input, seeding, freezing."""

from __future__ import annotations

import pytest
import torch
from sslreg_backbones import AlexNet, ResNet18
from torch import nn

STAGES = {
    "resnet18": ("conv1", "layer1", "layer2", "layer3", "layer4"),
    "alexnet": ("conv1", "conv2", "conv3", "conv4", "conv5"),
}


def _count_calls(model: nn.Module, names: tuple[str, ...]) -> tuple[dict[str, int], list]:
    """Attach forward hooks (test only) that count how often each named submodule runs."""
    calls = dict.fromkeys(names, 0)
    handles = []
    for name in names:

        def hook(*_: object, name: str = name) -> None:
            calls[name] += 1

        handles.append(getattr(model, name).register_forward_hook(hook))
    return calls, handles


@pytest.mark.parametrize(
    ("name", "layers", "expected_keys", "ran"),
    [
        ("resnet18", ["res2"], ["res2"], (1, 1, 0, 0, 0)),
        ("resnet18", ["res3", "res1"], ["res1", "res3"], (1, 1, 1, 0, 0)),
        ("resnet18", "res1", ["res1"], (1, 0, 0, 0, 0)),
        ("resnet18", "all", ["res1", "res2", "res3", "res4", "res5"], (1, 1, 1, 1, 1)),
        ("resnet18", None, ["res5"], (1, 1, 1, 1, 1)),
        ("alexnet", ["conv2", "conv4"], ["conv2", "conv4"], (1, 1, 1, 1, 0)),
        ("alexnet", "all", ["conv1", "conv2", "conv3", "conv4", "conv5"], (1, 1, 1, 1, 1)),
    ],
)
def test_subset_runs_one_pass_and_stops_after_the_deepest(trunk, name, layers, expected_keys, ran) -> None:
    model = trunk(name)
    calls, handles = _count_calls(model, STAGES[name])
    try:
        with torch.no_grad():
            features = model(torch.randn(2, 3, 64, 64), layers)
    finally:
        for handle in handles:
            handle.remove()
    assert list(features) == expected_keys
    assert tuple(calls.values()) == ran


def test_subset_features_equal_the_full_pass(trunk) -> None:
    model, x = trunk("resnet50"), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full, part = model(x, "all"), model(x, ["res2", "res4"])
    for layer in part:
        assert torch.equal(part[layer], full[layer])


def test_unknown_layer_is_a_clear_error(trunk) -> None:
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['res6'\]"):
        trunk("resnet18")(torch.randn(1, 3, 64, 64), ["res6"])


@pytest.mark.parametrize("cls", [ResNet18, AlexNet])
def test_channels_last_gives_the_same_features(cls: type) -> None:
    model = cls(cls.Config(name=cls.name, seed=0)).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        plain = model(x, "all")
        model = model.to(memory_format=torch.channels_last)
        fast = model(x.to(memory_format=torch.channels_last), "all")
    for layer in plain:
        torch.testing.assert_close(fast[layer], plain[layer], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "alexnet"])
def test_runs_under_autocast(trunk, name: str) -> None:
    model = trunk(name)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        features = model(torch.randn(2, 3, 64, 64), "all")
    assert all(f.dtype == torch.bfloat16 and torch.isfinite(f).all() for f in features.values())


@pytest.mark.parametrize("cls", [ResNet18, AlexNet])
def test_one_input_channel_for_colorization(cls: type) -> None:
    model = cls(cls.Config(name=cls.name, in_channels=1, seed=0)).eval()
    assert model.conv1.in_channels == 1
    with torch.no_grad():
        features = model(torch.randn(2, 1, 64, 64), "all")
    assert list(features) == list(model.layer_names)


def test_same_seed_same_weights_and_caller_rng_untouched() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = AlexNet(AlexNet.Config(name="alexnet", seed=7))
    assert torch.equal(torch.rand(3), expected_next)  # seeded init forks the RNG
    b = AlexNet(AlexNet.Config(name="alexnet", seed=7))
    c = AlexNet(AlexNet.Config(name="alexnet", seed=8))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_no_seed_uses_the_current_rng() -> None:
    torch.manual_seed(7)
    unseeded = AlexNet(AlexNet.Config(name="alexnet"))
    seeded = AlexNet(AlexNet.Config(name="alexnet", seed=7))
    assert torch.equal(unseeded.conv5.weight, seeded.conv5.weight)


def test_freeze_stops_gradients_and_keeps_eval_mode() -> None:
    model = AlexNet(AlexNet.Config(name="alexnet", seed=0)).freeze()
    model.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_gradients_reach_the_first_conv_in_training() -> None:
    model = ResNet18(ResNet18.Config(name="resnet18", seed=0, zero_init_residual=True)).train()
    features = model(torch.randn(2, 3, 64, 64), ["res3", "res5"])
    (features["res3"].mean() + features["res5"].mean()).backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0
    assert model.layer4[0].conv1.weight.grad is not None
    assert torch.count_nonzero(model.layer1[-1].bn2.weight.detach()) == 0  # zero_init_residual
