"""voc_detection: object boxes from PASCAL VOC devkit folders (one, or several as a union: VOC07+12).

Reads ``<root>/ImageSets/Main/<split>.txt`` (one image id per line), ``<root>/Annotations/<id>.xml`` (objects:
name, bndbox, difficult, truncated) and ``<root>/JPEGImages/<id>.jpg``. Annotations are parsed once when the
source is built: an image whose XML cannot be used or whose JPEG is missing is left out and counted
(``skipped``); past ``max_bad_fraction`` of the listed images building stops with one line that names the first
bad file and element. A JPEG that fails to decode later is skipped and counted like in every other source.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from sslreg_datasets import VOC_CLASSES, FileSource, SourceConfig, first_line, folder_problem, list_lines, read

from sslreg import Sample, UserError
from sslreg_detection.annotations import Annotation, BadAnnotation, parse_annotation

_SPLIT = re.compile(r"^[\w.-]+$")


class VocDetectionConfig(SourceConfig):
    """Options of voc_detection."""

    name: str = "voc_detection"
    root: str | list[str] = Field(
        description="A VOC devkit year folder (holding Annotations/, ImageSets/Main/, JPEGImages/), or a list of"
        " them read as one set (VOC07+12 trainval: [.../VOC2007, .../VOC2012])."
    )
    split: str = Field("trainval", description="Image set: ImageSets/Main/<split>.txt of every root.")
    classes: list[str] = Field(
        default_factory=lambda: list(VOC_CLASSES),
        description="Class names in label order (default: the 20 VOC classes); an object of another class makes"
        " its file bad.",
    )

    @field_validator("split")
    @classmethod
    def _plain_split(cls, split: str) -> str:
        if not _SPLIT.match(split):
            raise ValueError(f"split must be a plain file stem (letters, digits, '_', '-', '.'), got {split!r}")
        return split

    @field_validator("root")
    @classmethod
    def _some_root(cls, root: str | list[str]) -> str | list[str]:
        if isinstance(root, list) and not root:
            raise ValueError("root: give at least one devkit folder")
        return root

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, classes: list[str]) -> list[str]:
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be a non-empty list of distinct names, got {classes}")
        return classes


def roots_of(root: str | list[str]) -> list[Path]:
    """The devkit folders a config names."""
    return [Path(r).expanduser() for r in ([root] if isinstance(root, str) else root)]


def devkit_problems(root: Path, option: str, split: str) -> list[str]:
    """What is missing from one devkit folder for ``split`` (no XML parsed, no image decoded)."""
    problem = folder_problem(option, root)
    if problem:
        return [problem]
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        return [f"{option} '{root}': no ImageSets/Main/{split}.txt (is it a VOC devkit year folder?)"]
    for folder in ("Annotations", "JPEGImages"):
        if not (root / folder).is_dir():
            return [f"{option} '{root}': no {folder} folder"]
    line = first_line(split_file)
    if line is None:
        return [f"{option} '{root}': ImageSets/Main/{split}.txt names no images"]
    image_id = line[1].split()[0]
    for relative in (f"Annotations/{image_id}.xml", f"JPEGImages/{image_id}.jpg"):
        if not (root / relative).is_file():
            return [f"{option} '{root}': {relative} (the first image of split {split!r}) does not exist"]
    return []


class VocDetection(FileSource):
    """PASCAL VOC detection: images with their objects' boxes, classes and difficult/truncated flags."""

    name: ClassVar[str] = "voc_detection"
    Config: ClassVar[type[SourceConfig]] = VocDetectionConfig
    config: VocDetectionConfig
    consumes: ClassVar[str] = "VOC devkit folders (Annotations, ImageSets/Main, JPEGImages)"
    produces: ClassVar[str] = (
        "Sample(image RGB uint8, {boxes (N,4) float32 x1 y1 x2 y2 continuous, labels (N,) int64,"
        " difficult (N,) bool, truncated (N,) bool}, key = <folder>/<id>)"
    )
    target_kind: ClassVar[str] = "boxes"

    @classmethod
    def check(cls, config: VocDetectionConfig) -> list[str]:  # type: ignore[override]
        """Every root has the split file, Annotations/, JPEGImages/ and the split's first XML and JPEG."""
        roots = roots_of(config.root)
        problems: list[str] = []
        for number, root in enumerate(roots):
            problems += devkit_problems(root, "root" if len(roots) == 1 else f"root[{number}]", config.split)
        return problems

    def __init__(self, config: VocDetectionConfig) -> None:
        super().__init__(config)  # runs check(): the layout is there
        self._root = Path("")
        files, keys, annotations = [], [], []
        self.skipped: dict[str, int] = {"bad_annotation": 0, "missing_image": 0}
        self.problems: list[str] = []  # the first few, one line each: file and element
        listed = 0
        for root in self.devkit_roots():
            split_file = root / "ImageSets" / "Main" / f"{config.split}.txt"
            for _, text in list_lines(split_file, self.name):
                listed += 1
                image_id = text.split()[0]
                xml = root / "Annotations" / f"{image_id}.xml"
                try:
                    annotation = parse_annotation(xml, config.classes)
                except BadAnnotation as error:
                    self._skip("bad_annotation", f"{root.name}/Annotations/{image_id}.xml: {error}")
                    continue
                image = root / "JPEGImages" / f"{image_id}.jpg"
                if not image.is_file():
                    self._skip("missing_image", f"{root.name}/JPEGImages/{image_id}.jpg: file missing")
                    continue
                files.append(str(image))
                keys.append(f"{root.name}/{image_id}")
                annotations.append(annotation)
        bad = sum(self.skipped.values())
        if bad and (not files or bad / listed > config.max_bad_fraction):
            raise UserError(
                f"dataset {self.name!r}: {bad} of {listed} images of split {config.split!r} unusable"
                f" ({bad / listed:.1%}, more than max_bad_fraction={config.max_bad_fraction:g});"
                f" first: {self.problems[0]}"
            )
        self._files, self._keys, self.annotations = files, keys, annotations
        self._targets = [annotation.target() for annotation in annotations]

    def devkit_roots(self) -> list[Path]:
        """The devkit folders read, in order."""
        return roots_of(self.config.root)

    def _skip(self, kind: str, problem: str) -> None:
        self.skipped[kind] += 1
        if len(self.problems) < 20:
            self.problems.append(problem)

    def _item_key(self, item: int) -> str:
        return self._keys[item]

    def _read(self, item: int) -> Sample | str:
        decoded = read(self._files[item], self.config.max_pixels)
        if decoded.image is None:
            return decoded.reason
        annotation: Annotation = self.annotations[item]
        if annotation.width is not None and decoded.image.shape[:2] != (annotation.height, annotation.width):
            return (
                f"image is {decoded.image.shape[1]}x{decoded.image.shape[0]} but its annotation says"
                f" {annotation.width}x{annotation.height}"
            )
        return Sample(decoded.image, self._targets[item], self._keys[item])

    @property
    def class_names(self) -> list[str]:
        return list(self.config.classes)
