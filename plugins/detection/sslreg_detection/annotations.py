"""PASCAL VOC annotation files (Annotations/<id>.xml): objects with class, box, difficult and truncated flags.

Parsed with defusedxml, which refuses DTDs and entity declarations (no billion-laughs expansion, no external
entities): a VOC file has neither. A file that cannot be used raises :class:`BadAnnotation` naming the element.
Boxes come back in continuous pixel coordinates: the devkit's inclusive 1-based ``xmin..xmax`` becomes
``xmin - 1 .. xmax`` (see ``metric.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse

#: Largest annotation file read (a VOC file is about 1 KB).
MAX_XML_BYTES = 1_000_000


class BadAnnotation(ValueError):
    """An annotation file that cannot be used; ``element`` says where (e.g. ``object[2]/bndbox/xmin``)."""

    def __init__(self, element: str, reason: str) -> None:
        self.element, self.reason = element, reason
        super().__init__(f"{element}: {reason}" if element else reason)


@dataclass(frozen=True)
class Annotation:
    """One image's objects: boxes (N, 4) float32 continuous, labels (N,) int64, difficult and truncated (N,) bool."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray
    width: int | None = None
    height: int | None = None

    def target(self) -> dict[str, np.ndarray]:
        """The Sample target: boxes, labels, difficult, truncated."""
        return dict(boxes=self.boxes, labels=self.labels, difficult=self.difficult, truncated=self.truncated)


def _text(node: Element, tag: str, where: str, required: bool = True) -> str | None:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise BadAnnotation(f"{where}/{tag}" if where else tag, "missing or empty")
        return None
    return child.text.strip()


def _number(node: Element, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        value = float(text)  # a few VOC2012 files give coordinates like '273.5'
    except ValueError:
        raise BadAnnotation(f"{where}/{tag}", f"not a number: {text!r}") from None
    if not np.isfinite(value):
        raise BadAnnotation(f"{where}/{tag}", f"not a finite number: {text!r}")
    return value


def _flag(node: Element, tag: str, where: str) -> bool:
    text = _text(node, tag, where, required=False)
    if text is None:
        return False
    if text not in ("0", "1"):
        raise BadAnnotation(f"{where}/{tag}", f"expected 0 or 1, got {text!r}")
    return text == "1"


def _size(root: Element) -> tuple[int | None, int | None]:
    size = root.find("size")
    if size is None:
        return None, None
    width, height = _number(size, "width", "size"), _number(size, "height", "size")
    if width < 1 or height < 1:
        raise BadAnnotation("size", f"width and height must be ≥ 1, got {width:g}x{height:g}")
    return int(width), int(height)


def parse_annotation(path: str | Path, classes: Sequence[str]) -> Annotation:
    """The objects of one VOC XML file; BadAnnotation when it is unreadable, malformed or names unknown classes."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_XML_BYTES:
            raise BadAnnotation("", f"larger than {MAX_XML_BYTES:,} bytes")
        root = parse(str(path), forbid_dtd=True).getroot()
    except FileNotFoundError:
        raise BadAnnotation("", "file missing") from None
    except OSError as error:
        raise BadAnnotation("", f"cannot read: {error.strerror or error}") from None
    except DefusedXmlException as error:
        raise BadAnnotation("", f"refused: {type(error).__name__} (DTDs and entities are not allowed)") from None
    except ParseError as error:
        raise BadAnnotation("", f"not well-formed XML ({error})") from None
    if root.tag != "annotation":
        raise BadAnnotation(root.tag, "the root element must be <annotation>")
    width, height = _size(root)
    index = {name: i for i, name in enumerate(classes)}
    boxes, labels, difficult, truncated = [], [], [], []
    for number, obj in enumerate(root.findall("object"), 1):
        where = f"object[{number}]"
        name = _text(obj, "name", where)
        if name not in index:
            raise BadAnnotation(f"{where}/name", f"unknown class {name!r} (known: {', '.join(classes)})")
        box = obj.find("bndbox")
        if box is None:
            raise BadAnnotation(f"{where}/bndbox", "missing")
        inner = f"{where}/bndbox"
        xmin, ymin, xmax, ymax = (_number(box, tag, inner) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if xmin > xmax or ymin > ymax:
            raise BadAnnotation(inner, f"empty box: x {xmin:g}..{xmax:g}, y {ymin:g}..{ymax:g}")
        if xmax < 1 or ymax < 1 or (width and xmin > width) or (height and ymin > height):
            raise BadAnnotation(inner, f"box x {xmin:g}..{xmax:g}, y {ymin:g}..{ymax:g} lies outside the image")
        x1, y1 = max(xmin, 1.0) - 1.0, max(ymin, 1.0) - 1.0
        x2, y2 = (min(xmax, width) if width else xmax), (min(ymax, height) if height else ymax)
        boxes.append((x1, y1, x2, y2))
        labels.append(index[name])
        difficult.append(_flag(obj, "difficult", where))
        truncated.append(_flag(obj, "truncated", where))
    return Annotation(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(labels, np.int64),
        np.asarray(difficult, bool),
        np.asarray(truncated, bool),
        width,
        height,
    )


def object_xml(name: str, box: tuple[int, int, int, int], difficult: bool, truncated: bool) -> str:
    """One <object> element in the devkit's layout (``box`` = inclusive 1-based xmin, ymin, xmax, ymax)."""
    xmin, ymin, xmax, ymax = box
    return (
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>{int(truncated)}</truncated>\n\t\t<difficult>{int(difficult)}</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n"
        f"\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>\n\t</object>\n"
    )


def annotation_xml(folder: str, filename: str, width: int, height: int, objects: Sequence[str]) -> str:
    """A whole annotation file in the devkit's layout, around ``objects`` (from :func:`object_xml`)."""
    return (
        f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
        f"\t<segmented>0</segmented>\n{''.join(objects)}</annotation>\n"
    )
