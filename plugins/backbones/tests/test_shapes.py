"""Every trunk gives the documented map for every layer, and the protocol's pooled sizes at its input size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sslreg_backbones import ResNet50, ResNet50W2

from sslreg.pooling import pool_features

#: Side of each layer's map per input size (docs/protocol.md#feature-taps-and-pooling) and channels per layer.
RESNET_SIDES = {64: (32, 16, 8, 4, 2), 224: (112, 56, 28, 14, 7)}
ALEXNET_SIDES = {64: (14, 7, 3, 3, 3), 227: (55, 27, 13, 13, 13)}
CHANNELS = {
    "alexnet": (96, 256, 384, 384, 256),
    "resnet18": (64, 64, 128, 256, 512),
    "resnet34": (64, 64, 128, 256, 512),
    "resnet50": (64, 256, 512, 1024, 2048),
    "resnet101": (64, 256, 512, 1024, 2048),
    "resnet50w2": (128, 512, 1024, 2048, 4096),
}
SLOW = pytest.mark.slow
CASES = [
    ("alexnet", 64),
    ("alexnet", 227),
    ("resnet18", 64),
    ("resnet18", 224),
    ("resnet34", 64),
    ("resnet34", 224),
    ("resnet50", 64),
    ("resnet50", 224),
    ("resnet101", 64),
    pytest.param("resnet101", 224, marks=SLOW),
    ("resnet50w2", 64),
    pytest.param("resnet50w2", 224, marks=SLOW),
]


@pytest.mark.parametrize(("name", "size"), CASES)
def test_every_layer_has_the_documented_shape(trunk, name: str, size: int) -> None:
    model = trunk(name)
    sides = (ALEXNET_SIDES if name == "alexnet" else RESNET_SIDES)[size]
    with torch.no_grad():
        features = model(torch.randn(2, 3, size, size), "all")
    assert list(features) == list(model.layer_names)
    for layer, channels, side in zip(model.layer_names, CHANNELS[name], sides):
        assert model.layer_channels[layer] == channels
        assert tuple(features[layer].shape) == (2, channels, side, side), layer


@pytest.mark.parametrize(
    ("name", "dims"),
    [
        ("alexnet", (9600, 9216, 9600, 9600, 9216)),
        ("resnet50", (9216, 9216, 8192, 9216, 8192)),
        ("resnet18", (9216, 2304, 2048, 2304, 2048)),
    ],
)
def test_protocol_pooling_gives_the_protocol_dims(trunk, name: str, dims: tuple[int, ...]) -> None:
    model = trunk(name)
    size = model.input_size
    with torch.no_grad():
        features = model(torch.randn(1, 3, size, size), "all")
    pooled = pool_features(features, model.pool_specs, at_protocol_size=True)
    assert tuple(pooled[layer].shape[1] for layer in model.layer_names) == dims
    for layer, spec in model.pool_specs.items():  # the exact k/s/p hit the grid (no adaptive fallback)
        exact = F.avg_pool2d(features[layer], spec.kernel, spec.stride, spec.padding)
        assert exact.shape[-2:] == (spec.grid, spec.grid), layer
        assert torch.equal(pooled[layer], exact.flatten(1))


def test_pooled_dims_at_small_inputs_match_protocol_dims(trunk) -> None:
    model = trunk("resnet50")
    with torch.no_grad():
        pooled = pool_features(model(torch.randn(1, 3, 96, 96), "all"), model.pool_specs, at_protocol_size=False)
    assert [p.shape[1] for p in pooled.values()] == [9216, 9216, 8192, 9216, 8192]


def test_width_multiplier_widens_every_layer(trunk) -> None:
    named = trunk("resnet50w2")  # its 64 px forward is checked in the shape test above
    assert issubclass(ResNet50W2, ResNet50)
    assert named.config.model_dump() == ResNet50.Config(name="resnet50w2", width=2, seed=0).model_dump()
    assert tuple(named.layer_channels.values()) == (128, 512, 1024, 2048, 4096)
