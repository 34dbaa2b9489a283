"""Small VOC devkit folders written by the tests, and a registry-backed dataset builder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from sslreg_detection.annotations import annotation_xml, object_xml

CLASSES = ["cat", "dog", "car"]


def write_devkit(root: Path, objects_per_image: dict[str, list[tuple]], split: str = "trainval") -> Path:
    """A devkit year folder: one 40x30 JPEG and XML per id; ``objects`` are (class, box, difficult, truncated)."""
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(objects_per_image))
    for image_id, objects in objects_per_image.items():
        image = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), image)
        xml = annotation_xml(root.name, f"{image_id}.jpg", 40, 30, [object_xml(*o) for o in objects])
        (root / "Annotations" / f"{image_id}.xml").write_text(xml)
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in objects_per_image))
    return root


@pytest.fixture
def devkit(tmp_path: Path) -> Path:
    """A VOC2007-like folder with 4 images."""
    return write_devkit(
        tmp_path / "VOC2007",
        {
            "000001": [("cat", (1, 1, 20, 15), False, False), ("dog", (10, 5, 40, 30), True, True)],
            "000002": [("car", (5, 6, 7, 8), False, False)],
            "000003": [],
            "000004": [("dog", (2, 3, 12, 13), False, False), ("dog", (20, 3, 30, 13), False, False)],
        },
    )


@pytest.fixture
def make_devkit():
    """``write_devkit`` for tests that need more folders (helpers are fixtures: tests import no conftest)."""
    return write_devkit


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: small convolutions on 2 shared cores run much faster without thread fights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
