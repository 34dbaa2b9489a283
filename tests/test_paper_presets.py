"""configs/paper trains what the paper trained: the Jigsaw AlexNet and the reference Jigsaw recipe, the
Colorization ResNet-50 (res5 at stride 1) on Zhang et al.'s 313 bins with the reference's L - 50 input."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sslreg.config import load_raw

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"


def points(name: str) -> list[dict]:
    """Every sweep point of a paper config as (pretext, backbone) option dicts, placeholders at their defaults."""
    raw = load_raw(PAPER / name)
    grid = raw.get("sweep") or {}
    result = []
    for values in itertools.product(*grid.values()):
        pretrain = {**raw["pretrain"], "pretext": dict(raw["pretrain"]["pretext"])}
        pretrain["backbone"] = dict(pretrain["backbone"])
        for key, value in zip(grid, values):
            *parents, last = key.split(".")[1:]
            node = pretrain
            for part in parents:
                node = node[part]
            node[last] = dict(value) if isinstance(value, dict) else value
        result.append(pretrain)
    return result


@pytest.mark.parametrize("name", ["jigsaw_data_size.yaml", "jigsaw_complexity.yaml"])
def test_jigsaw_configs_train_the_jigsaw_alexnet_and_resnet50_the_reference_way(name: str) -> None:
    pretrains = points(name)
    assert {p["backbone"]["name"] for p in pretrains} == {"alexnet_jigsaw", "resnet50"}
    for pretrain in pretrains:
        pretext = pretrain["pretext"]
        assert pretext["head"] == "reference" and pretext["normalize"] == "imagenet"
        assert (pretext["grayscale_scope"], pretext["grayscale_prob"], pretext["flip"]) == ("image", 0.66, True)
        assert (pretext["color_jitter"], pretext["channel_shift"]) == (0.0, 0)


def test_colorization_configs_use_the_colorization_resnet50_and_313_bins() -> None:
    pretrains = points("colorization_complexity.yaml")
    assert {p["backbone"]["name"] for p in pretrains} == {"alexnet", "resnet50"}
    for pretrain in pretrains:
        pretext, backbone = pretrain["pretext"], pretrain["backbone"]
        assert pretext["bins"] == "zhang313" and pretext["input_scale"] == 1.0 and pretext["resize"] == 256
        if backbone["name"] == "resnet50":
            assert backbone["layer4_stride"] == 1
    assert sorted({p["pretext"]["num_neighbors"] for p in pretrains}) == [2, 5, 10, 20, 40, 80, 160, 313]
