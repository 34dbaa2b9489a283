"""The paper's trunk variants: the Jigsaw AlexNet (its own layout and pooling) and the Colorization ResNet-50
(res5 at stride 1), checked against the reference's kernel/stride table (docs/protocol.md#feature-taps-and-pooling).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from sslreg_backbones import AlexNetJigsaw, ResNet18, ResNet50
from sslreg_backbones.alexnet_jigsaw import LocalResponseNorm
from torch import nn

from sslreg.cli import main
from sslreg.pooling import pool_features

#: The reference benchmark's Jigsaw AlexNet pooling (kernel, stride) per layer, and its pooled grid.
JIGSAW_ALEXNET_TABLE = {
    "conv1": (28, 9, 10),
    "conv2": (24, 6, 6),
    "conv3": (14, 3, 5),
    "conv4": (14, 3, 5),
    "conv5": (16, 2, 6),
}
CHANNELS = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256}


@pytest.fixture(scope="module")
def jigsaw_alexnet() -> AlexNetJigsaw:
    return AlexNetJigsaw(AlexNetJigsaw.Config(name="alexnet_jigsaw", seed=0)).eval()


def test_layout_is_the_jigsaw_alexnet_not_caffenet(jigsaw_alexnet) -> None:
    net = jigsaw_alexnet
    assert (net.conv1.kernel_size, net.conv1.stride, net.conv1.padding) == ((11, 11), (2, 2), (0, 0))
    assert net.conv1.bias is not None and net.conv2.bias is not None  # no BatchNorm after conv1/conv2 ...
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [m.num_features for m in norms] == [384, 384, 256]  # ... BatchNorm on conv3..conv5 only
    assert (net.lrn.size, net.lrn.alpha, net.lrn.beta, net.lrn.k) == (5, 1e-4, 0.75, 1.0)
    assert net.conv2.groups == net.conv4.groups == net.conv5.groups == 2


def test_lrn_equals_torchs_and_runs_backward_under_deterministic_algorithms() -> None:
    x = torch.randn(2, 96, 7, 7, generator=torch.Generator().manual_seed(0)) * 30  # large enough for LRN to bite
    x.requires_grad_(True)
    ours, reference = LocalResponseNorm(5, 1e-4, 0.75), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)
    torch.testing.assert_close(ours(x), reference(x))
    grad = torch.randn_like(x)
    torch.testing.assert_close(torch.autograd.grad(ours(x), x, grad)[0], torch.autograd.grad(reference(x), x, grad)[0])
    assert not torch.allclose(ours(x), x)
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # no avg_pool3d (whose CUDA backward would refuse), only additions
    try:
        ours(x).sum().backward()
    finally:
        torch.use_deterministic_algorithms(was)


@pytest.mark.parametrize(("size", "sides", "pool5"), [(227, (109, 54, 27, 27, 27), 13), (64, (27, 13, 6, 6, 6), 3)])
def test_maps_at_protocol_size_and_tile_size(jigsaw_alexnet, size, sides, pool5) -> None:
    with torch.no_grad():
        features = jigsaw_alexnet(torch.randn(2, 3, size, size), "all")
    for (layer, feature), side in zip(features.items(), sides):
        assert tuple(feature.shape) == (2, CHANNELS[layer], side, side), layer
    # pool5 of a 64 px tile (Caffe ceil mode) is the 3x3x256 that the Jigsaw head's fc6 reads
    pooled = F.max_pool2d(features["conv5"], 3, 2, ceil_mode=True)
    assert tuple(pooled.shape[1:]) == (256, pool5, pool5)


def test_pooling_follows_the_reference_kernel_stride_table(jigsaw_alexnet) -> None:
    specs = jigsaw_alexnet.pool_specs
    assert {layer: (s.kernel, s.stride, s.grid) for layer, s in specs.items()} == JIGSAW_ALEXNET_TABLE
    assert all(s.padding == 0 for s in specs.values())
    with torch.no_grad():
        features = jigsaw_alexnet(torch.randn(1, 3, 227, 227), "all")
    pooled = pool_features(features, specs, at_protocol_size=True)
    for layer, (kernel, stride, grid) in JIGSAW_ALEXNET_TABLE.items():
        side = features[layer].shape[-1]
        assert (side - kernel) // stride + 1 == grid, layer  # the table's k/s hit the grid exactly at 227 px
        exact = F.avg_pool2d(features[layer], kernel, stride)
        assert torch.equal(pooled[layer], exact.flatten(1)), layer
        assert pooled[layer].shape[1] == CHANNELS[layer] * grid * grid
    assert [p.shape[1] for p in pooled.values()] == [9600, 9216, 9600, 9600, 9216]


def test_sslreg_info_lists_layers_with_pooled_dims(capsys) -> None:
    assert main(["info", "alexnet_jigsaw", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    layers = info["details"]["layers"]
    assert list(layers) == list(JIGSAW_ALEXNET_TABLE)
    for layer, (kernel, stride, grid) in JIGSAW_ALEXNET_TABLE.items():
        assert layers[layer]["pooled_dims"] == CHANNELS[layer] * grid * grid
        assert layers[layer]["pooling"] == f"k{kernel} s{stride} p0 -> {grid}x{grid}"
    assert [v["stride"] for v in layers.values()] == [2, 4, 8, 8, 8]
    assert info["details"]["input_size"] == 227


def test_resnet50_res5_at_stride_one_is_14x14_and_pools_to_8192() -> None:
    net = ResNet50(ResNet50.Config(name="resnet50", layer4_stride=1, seed=0)).eval()
    with torch.no_grad():
        features = net(torch.randn(1, 3, 224, 224), ["res4", "res5"])
    assert tuple(features["res4"].shape[1:]) == (1024, 14, 14)
    assert tuple(features["res5"].shape[1:]) == (2048, 14, 14)
    spec = net.pool_specs["res5"]
    assert (spec.kernel, spec.stride, spec.padding, spec.grid) == (12, 2, 0, 2)
    assert net.layer_strides["res5"] == 16 and net.pool_specs["res4"].kernel == 8  # other layers unchanged
    pooled = pool_features(features, net.pool_specs, at_protocol_size=True)
    assert pooled["res5"].shape[1] == 8192
    assert torch.equal(pooled["res5"], F.avg_pool2d(features["res5"], 12, 2).flatten(1))  # exact, no fallback
    assert [m.dilation for m in net.layer4.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)] == [
        (1, 1)
    ] * 3  # plain stride 1 as the reference, not a dilated res5


def test_layer4_stride_keeps_parameters_and_defaults() -> None:
    default = ResNet18(ResNet18.Config(name="resnet18", seed=0))
    stride1 = ResNet18(ResNet18.Config(name="resnet18", layer4_stride=1, seed=0))
    assert default.config.layer4_stride == 2 and default.layer_strides["res5"] == 32
    assert default.pool_specs["res5"].kernel == 6
    # same parameters (so the same weights load into either), only the res5 map size differs
    assert {k: v.shape for k, v in default.state_dict().items()} == {
        k: v.shape for k, v in stride1.state_dict().items()
    }
    with torch.no_grad():
        assert stride1(torch.randn(1, 3, 64, 64), "res5")["res5"].shape[-1] == 4


def test_sslreg_info_resnet50_names_the_stride_one_variant(capsys) -> None:
    assert main(["info", "resnet50", "--json"]) == 0
    details = json.loads(capsys.readouterr().out)["details"]
    assert "k12 s2 p0 -> 2x2, 8192 dims" in details["layer4_stride: 1"]
