"""Loading local weights into this plugin's trunks through the core's trunk builder: torchvision state dicts,
sslreg checkpoints, and clear errors for what does not map."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from sslreg import UserError, build_trunk
from sslreg.plugins import load_plugins


@pytest.fixture(scope="module")
def registry():
    return load_plugins().registry


def _randomise_bn_statistics(model: torch.nn.Module, seed: int) -> None:
    """Give BatchNorm non-trivial statistics and affine terms, so loading them is really checked."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.running_mean, module.weight, module.bias):
                tensor.data.copy_(torch.randn(tensor.shape, generator=generator) * 0.1 + (tensor is module.weight))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)


def _torchvision_taps(model: torchvision.models.ResNet, x: torch.Tensor) -> list[torch.Tensor]:
    """torchvision's own intermediates: relu (after conv1+bn1), layer1 ... layer4."""
    x = model.relu(model.bn1(model.conv1(x)))
    taps = [x]
    x = model.maxpool(x)
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = stage(x)
        taps.append(x)
    return taps


@pytest.mark.parametrize(
    ("factory", "name"), [(torchvision.models.resnet50, "resnet50"), (torchvision.models.resnet18, "resnet18")]
)
def test_torchvision_state_dict_gives_identical_features(tmp_path: Path, registry, factory, name: str) -> None:
    torch.manual_seed(0)
    reference = factory(weights=None)
    _randomise_bn_statistics(reference, seed=1)
    path = tmp_path / "torchvision.pth"
    torch.save(reference.state_dict(), path)
    ours = build_trunk(registry, {"name": name, "weights": str(path)}, seed=5).eval()
    reference.eval()
    report = ours.weights_report
    assert report.missing == [] and report.unexpected == [] and report.prefix == ""
    assert report.ignored_head == ["fc.weight", "fc.bias"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = _torchvision_taps(reference, x)
        features = ours(x, "all")
    for layer, tensor in zip(ours.layer_names, expected):
        torch.testing.assert_close(features[layer], tensor, rtol=0, atol=0)


@pytest.fixture
def source(trunk) -> dict[str, torch.Tensor]:
    """State dict of the shared seed-0 ResNet-18 (targets below are built with another seed)."""
    return trunk("resnet18").state_dict()


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_sslreg_checkpoint_with_trunk_prefix_loads(tmp_path: Path, registry, source, key: str) -> None:
    checkpoint = {
        key: {**{f"trunk.{k}": v for k, v in source.items()}, "head.fc.weight": torch.zeros(10, 4)},
        "meta": {"epoch": 2, "seed": np.int64(3), "history": np.arange(4.0), "dtype": np.dtype("float32")},
    }
    path = tmp_path / "epoch_2.pth"
    torch.save(checkpoint, path)
    model = build_trunk(registry, {"name": "resnet18", "weights": str(path)}, seed=1)
    report = model.weights_report
    assert report.nested_under == key and report.prefix == "trunk."
    assert report.ignored_head == ["head.fc.weight"] and report.missing == [] and report.unexpected == []
    for name, value in model.state_dict().items():
        assert torch.equal(value, source[name]), name


def test_ddp_prefix_is_stripped(tmp_path: Path, registry, source) -> None:
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.trunk.{k}": v for k, v in source.items()}}, path)
    model = build_trunk(registry, {"name": "resnet18", "weights": str(path)}, seed=1)
    assert torch.equal(model.conv1.weight, source["conv1.weight"])


def test_missing_keys_are_an_error_and_unexpected_ones_a_warning(
    tmp_path: Path, registry, source, caplog: pytest.LogCaptureFixture
) -> None:
    partial = {k: v for k, v in source.items() if not k.startswith("layer4.")}
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    with pytest.raises(UserError, match=r"resnet18: weights .*partial\.pth.* lack \d+ of the trunk's tensors: layer4"):
        build_trunk(registry, {"name": "resnet18", "weights": str(path)}, seed=1)
    extra = {**source, "projector.weight": torch.zeros(2)}
    torch.save(extra, path)
    with caplog.at_level(logging.WARNING, logger="sslreg.weights"):
        model = build_trunk(registry, {"name": "resnet18", "weights": str(path)}, seed=1)
    assert model.weights_report.unexpected == ["projector.weight"]
    assert "projector.weight" in caplog.text and "no place" in caplog.text


def test_nothing_matching_is_an_error(tmp_path: Path, registry) -> None:
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(UserError, match=r"resnet18: no key of .*other\.pth.*encoder\.weight"):
        build_trunk(registry, {"name": "resnet18", "weights": str(path)}, seed=0)


def test_torchvision_alexnet_is_refused_with_the_reason(tmp_path: Path, registry) -> None:
    path = tmp_path / "alexnet_tv.pth"
    # the key layout and shapes of torchvision.models.alexnet().features (its classifier is 54M parameters)
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}
    state = {f"features.{i}.weight": torch.zeros(shape) for i, shape in shapes.items()}
    state.update({f"features.{i}.bias": torch.zeros(shape[0]) for i, shape in shapes.items()})
    torch.save(state, path)
    with pytest.raises(UserError, match="torchvision AlexNet state dict .* cannot be mapped"):
        build_trunk(registry, {"name": "alexnet", "weights": str(path)}, seed=0)


def test_alexnet_loads_its_own_checkpoint(tmp_path: Path, registry) -> None:
    source = build_trunk(registry, {"name": "alexnet", "seed": 4}, seed=0).state_dict()
    path = tmp_path / "alexnet.pth"
    torch.save({"state_dict": {f"trunk.{k}": v for k, v in source.items()}}, path)
    model = build_trunk(registry, {"name": "alexnet", "weights": str(path)}, seed=0)
    assert torch.equal(model.conv3.weight, source["conv3.weight"])


def test_shape_mismatch_names_the_tensor(tmp_path: Path, registry, source) -> None:
    from sslreg import InputContract

    path = tmp_path / "rgb.pth"
    torch.save(source, path)
    fit = r"do not fit this trunk: conv1\.weight: file \(64, 3, 7, 7\) vs trunk \(64, 1, 7, 7\)"
    l_only = InputContract(space="lab_l", mean=(50.0,), std=(50.0,))
    with pytest.raises(UserError, match=fit):
        build_trunk(registry, {"name": "resnet18", "weights": str(path)}, seed=0, contract=l_only)


def test_missing_file_is_a_clear_error(tmp_path: Path, registry) -> None:
    with pytest.raises(FileNotFoundError, match=r"weights: file .*nope\.pth' not found"):
        build_trunk(registry, {"name": "alexnet", "weights": str(tmp_path / "nope.pth")}, seed=0)


def test_unsafe_pickle_is_refused(tmp_path: Path, registry) -> None:
    path = tmp_path / "unsafe.pth"
    torch.save({"state_dict": {}, "callback": print}, path)
    with pytest.raises(UserError, match="weights_only=True"):
        build_trunk(registry, {"name": "alexnet", "weights": str(path)}, seed=0)
