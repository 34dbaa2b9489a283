"""sslreg's conformance kit on every source of this plugin, each built on a small fixture the test writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydantic
import pytest
import sslreg_datasets

from sslreg.cli import options_of
from sslreg.testing import check_dataset, check_plugin


def test_plugin_conforms(
    tmp_path: Path, class_folder: Path, mixed_folder: Path, make_shards: Callable, make_voc: Callable
) -> None:
    (tmp_path / "names.txt").write_text("cat/0.jpg,cat\ndog/1.jpg,dog\nfish/0.jpg,fish\n")
    (tmp_path / "plain.txt").write_text(f"{class_folder}/cat/1.jpg\n{class_folder}/fish/1.jpg\n")
    (tmp_path / "val.csv").write_text("dog/0.jpg 1\ncat/1.jpg 7\n")
    make_voc(tmp_path / "VOC2007")
    urls = make_shards(tmp_path / "shards", counts=(3, 2, 4), broken=(1, 0))
    entries = check_plugin(
        sslreg_datasets,
        dataset_options={
            "embedded_photos": {"num_crops": 5, "photos": ["flower", "chelsea"], "crop_size": 24},
            "embedded_shapes": [{"num_images": 4}, {"num_images": 6, "split": "test", "subset": 3}],
            "image_folder": [{"root": str(mixed_folder), "max_bad_fraction": 1.0}, {"root": str(class_folder)}],
            "labeled_folder": {"root": str(class_folder)},
            "file_list": [
                {"list": str(tmp_path / "names.txt"), "root": str(class_folder)},
                {"list": str(tmp_path / "plain.txt")},
            ],
            "voc07": {"root": str(tmp_path / "VOC2007"), "subset": 3},
            "places205": {"root": str(tmp_path), "list": str(tmp_path / "val.csv"), "images": str(class_folder)},
            "shards": [
                {"urls": urls, "label_extension": "cls", "max_bad_fraction": 1.0},
                {"urls": urls, "num_images": 9, "subset": 5, "max_bad_fraction": 1.0, "shuffle_shards": False},
            ],
        },
    )
    assert {entry.name for entry in entries} == {source.name for source in sslreg_datasets.SOURCES}


def test_places_default_layout_conforms(tmp_path: Path, class_folder: Path, make_places: Callable) -> None:
    check_dataset(sslreg_datasets.Places205, {"root": str(make_places(tmp_path / "places", class_folder))})


def test_required_options_are_required_and_shown() -> None:
    required = {"image_folder": "root", "labeled_folder": "root", "file_list": "list", "shards": "urls",
                "voc07": "root", "places205": "root"}  # fmt: skip
    for source in sslreg_datasets.SOURCES:
        shown = {row["option"]: row["default"] for row in options_of(source)}
        expected = [required[source.name]] if source.name in required else []
        assert [option for option, default in shown.items() if default == "(required)"] == expected
        if expected:
            with pytest.raises(pydantic.ValidationError, match=rf"{expected[0]}\n  Field required"):
                source.Config(name=source.name)
