"""configs/paper: with no data on the machine, `sslreg validate` names every missing root and the variable that
sets it; on a tiny data tree made here (YFCC-style folder, VOC2007 devkit, NYUv2, Places205, trunk weights) every
file is OK."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from sslreg_datasets.voc07 import VOC_CLASSES
from sslreg_normals.layout import write_sample, write_split

from sslreg import build_trunk, get_registry
from sslreg.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted((ROOT / "configs" / "paper").glob("*.yaml"))
VARIABLES = ("YFCC_ROOT", "VOC07_ROOT", "VOC12_ROOT", "NYUV2_ROOT", "PLACES205_ROOT", "TRUNK_WEIGHTS")


ANNOTATION = (
    "<annotation><size><width>40</width><height>40</height></size><object><name>dog</name><difficult>0</difficult>"
    "<bndbox><xmin>2</xmin><ymin>3</ymin><xmax>30</xmax><ymax>35</ymax></bndbox></object></annotation>"
)


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("sslreg: error:")]


@pytest.fixture
def no_data(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("config", PAPER, ids=lambda p: p.name)
def test_without_data_every_missing_root_names_its_variable(config, no_data, capsys):
    assert main(["validate", str(config)]) == 2
    captured = capsys.readouterr()
    errors = _errors(captured.err)
    assert errors and "Traceback" not in captured.err
    for line in errors:
        assert "does not exist" in line or "no such file" in line, line
        assert any(f"set ${name}" in line for name in VARIABLES), line
    named = {name for name in VARIABLES if any(f"${name}" in line for line in errors)}
    text = config.read_text() + "".join(p.read_text() for p in (ROOT / "configs" / "paper" / "base").glob("*.yaml"))
    assert named and named <= {name for name in VARIABLES if name in text}


def _tiny_tree(tmp_path: Path) -> dict[str, str]:
    yfcc = tmp_path / "yfcc"
    yfcc.mkdir()
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(yfcc / "0001.jpg"), image)
    roots = {}
    for year, splits in (("2007", (("trainval", ["000005", "000007"]), ("test", ["000001"]))),
                         ("2012", (("trainval", ["2008_000002"]),))):  # fmt: skip
        voc = roots[year] = tmp_path / "VOCdevkit" / f"VOC{year}"
        for folder in ("ImageSets/Main", "JPEGImages", "Annotations"):
            (voc / folder).mkdir(parents=True)
        for split, ids in splits:
            (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{n}\n" for n in ids))
            for name in ids:
                cv2.imwrite(str(voc / "JPEGImages" / f"{name}.jpg"), image)
                (voc / "Annotations" / f"{name}.xml").write_text(ANNOTATION)
            for cls in VOC_CLASSES:
                (voc / "ImageSets" / "Main" / f"{cls}_{split}.txt").write_text("".join(f"{n} -1\n" for n in ids))
    nyu = tmp_path / "nyuv2"
    normals = np.zeros((40, 40, 3), np.float32)
    normals[..., 2] = 1.0
    for split, name in (("train", "0001"), ("test", "0002")):
        write_sample(nyu, name, image, normals, np.ones((40, 40), bool))
        write_split(nyu, split, [name])
    places = tmp_path / "places205"
    (places / "trainvalsplit_places205").mkdir(parents=True)
    (places / "images256" / "a" / "abbey").mkdir(parents=True)
    cv2.imwrite(str(places / "images256" / "a" / "abbey" / "0001.jpg"), image)
    (places / "trainvalsplit_places205" / "categoryIndex_places205.csv").write_text("/a/abbey 0\n")
    for split in ("train", "val"):
        (places / "trainvalsplit_places205" / f"{split}_places205.csv").write_text("a/abbey/0001.jpg 0\n")
    weights = tmp_path / "trunk.pth"
    torch.save(build_trunk(get_registry(), {"name": "resnet50"}, seed=0).state_dict(), weights)
    return {
        "YFCC_ROOT": str(yfcc),
        "VOC07_ROOT": str(roots["2007"]),
        "VOC12_ROOT": str(roots["2012"]),
        "NYUV2_ROOT": str(nyu),
        "PLACES205_ROOT": str(places),
        "TRUNK_WEIGHTS": str(weights),
    }


def test_on_a_tiny_data_tree_every_paper_config_is_ok(tmp_path, monkeypatch, capsys):
    for name, value in _tiny_tree(tmp_path).items():
        monkeypatch.setenv(name, value)
    import sslreg_navigation.gl

    monkeypatch.setattr(sslreg_navigation.gl, "gl_renderer", lambda: "test")  # the GL probe has its own tests
    for config in PAPER:
        assert main(["validate", str(config)]) == 0, (config.name, capsys.readouterr().err)
        assert f"{config}: OK" in capsys.readouterr().out


def _evaluator(config: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "configs" / "paper" / config).read_text())["evaluate"][0]


@pytest.mark.parametrize(
    "config, backbone, decay, crop, rgb",
    [
        ("places205_linear.yaml", {"name": "resnet50"}, 1e-4, "random_resized", True),
        ("places205_linear_alexnet.yaml", {"name": "alexnet_jigsaw"}, 5e-4, "random_resized", True),
        ("places205_linear_colorization.yaml", {"name": "resnet50", "layer4_stride": 1}, 1e-4, "resize_crop", False),
    ],
)
def test_places205_linear_presets_hold_the_reference_recipe(config, backbone, decay, crop, rgb):
    import yaml
    from sslreg_linear import LinearProbeConfig

    trunk = yaml.safe_load((ROOT / "configs" / "paper" / config).read_text())["backbone"]
    assert {key: trunk[key] for key in backbone} == backbone
    probe = LinearProbeConfig(**_evaluator(config))
    assert (probe.iterations, probe.batch_size, probe.lr, probe.gamma) == (140000, 256, 0.01, 0.1)
    assert probe.lr_steps == [40000, 80000, 120000] and probe.batch_norm and probe.weight_decay == decay
    assert probe.train_crop == crop and probe.image_size is None  # the trunk's 224
    assert (probe.color_jitter, probe.lighting) == ((0.4, 0.1) if rgb else (0.0, 0.0))
    assert (probe.train.name, probe.train.split, probe.test.split) == ("places205", "train", "val")


def test_places205_low_shot_preset_is_one_vs_rest_top1_at_the_paper_shots():
    from sslreg_svm.low_shot import CLASS_SHOTS, LowShotConfig

    low_shot = LowShotConfig(**_evaluator("places205_low_shot.yaml"))
    assert low_shot.shots == list(CLASS_SHOTS) == [1, 2, 4, 8, 16] and low_shot.samples == 5
    assert (low_shot.train.name, low_shot.train.split, low_shot.test.split) == ("places205", "train", "val")
