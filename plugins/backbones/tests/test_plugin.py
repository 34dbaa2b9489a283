"""The plugin registers its trunks, and ``sslreg info`` (Backbone.describe) works for each."""

from __future__ import annotations

import pytest

from sslreg.plugins import get_registry
from sslreg.testing import check_backbone, check_component, registered_entries

NAMES = ["alexnet", "alexnet_jigsaw", "resnet18", "resnet34", "resnet50", "resnet101", "resnet50w2"]


def test_every_trunk_is_registered_by_this_plugin() -> None:
    registry = get_registry()
    for name in NAMES:
        entry = registry.get("backbone", name)
        assert entry.plugin == "backbones" and entry.distribution == "sslreg-backbones"
        assert entry.summary and entry.cls.Config.model_fields["width" if "resnet" in name else "groups"].description


@pytest.mark.parametrize(
    "name",
    [
        "alexnet",
        "alexnet_jigsaw",
        "resnet18",
        "resnet50",
        pytest.param("resnet101", marks=pytest.mark.slow),
        pytest.param("resnet34", marks=pytest.mark.slow),
        pytest.param("resnet50w2", marks=pytest.mark.slow),
    ],
)
def test_describe_lists_layers_channels_strides_and_pooled_dims(name: str) -> None:
    facts = get_registry().get("backbone", name).cls.describe()
    layers = facts["layers"]
    assert list(layers) == (
        ["conv1", "conv2", "conv3", "conv4", "conv5"]
        if name.startswith("alexnet")
        else ["res1", "res2", "res3", "res4", "res5"]
    )
    assert facts["parameters"] > 1_000_000
    if name == "resnet50":
        assert [v["pooled_dims"] for v in layers.values()] == [9216, 9216, 8192, 9216, 8192]
        assert [v["stride"] for v in layers.values()] == [2, 4, 8, 16, 32]
        assert facts["parameters"] == 23_508_032  # torchvision's resnet50 without its fc layer
    if name == "alexnet":
        assert facts["input_size"] == 227
        assert [v["pooled_dims"] for v in layers.values()] == [9600, 9216, 9600, 9600, 9216]


def test_registry_build_validates_options() -> None:
    registry = get_registry()
    model = registry.build("backbone", {"name": "alexnet", "groups": 1, "in_channels": 1, "seed": 0})
    assert model.conv1.in_channels == 1 and model.conv2.groups == 1
    with pytest.raises(ValueError, match="width"):
        registry.build("backbone", {"name": "resnet50", "width": 0})
    with pytest.raises(ValueError, match="groups"):
        registry.build("backbone", {"name": "alexnet", "groups": 3})


def test_describe_records_the_protocol_pooling_with_padding() -> None:
    layers = get_registry().get("backbone", "resnet18").cls.describe()["layers"]
    assert layers["res1"]["pooling"] == "k10 s10 p4 -> 12x12" and layers["res5"]["pooling"] == "k6 s1 p0 -> 2x2"


def test_every_component_passes_the_kit_checks() -> None:
    import sslreg_backbones

    entries = registered_entries(sslreg_backbones)
    assert sorted(entry.name for entry in entries) == sorted(NAMES)
    for entry in entries:
        check_component(entry.cls)


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "resnet50",
        pytest.param("resnet34", marks=pytest.mark.slow),
        pytest.param("resnet101", marks=pytest.mark.slow),
        pytest.param("resnet50w2", marks=pytest.mark.slow),
        "alexnet",
        "alexnet_jigsaw",
    ],
)
def test_backbone_passes_the_kit(name: str) -> None:
    check_backbone(get_registry().get("backbone", name).cls)
