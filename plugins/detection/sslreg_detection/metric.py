"""VOC detection AP: per-class average precision at an IoU threshold, difficult objects ignored.

The rule of the PASCAL VOC devkit (VOCevaldet.m; py-faster-rcnn's ``voc_eval.py``), on boxes in continuous pixel
coordinates ``(x1, y1, x2, y2)`` with area ``(x2 - x1) * (y2 - y1)`` (the VOC reader turns a devkit box
``xmin..xmax`` of inclusive 1-based pixels into ``xmin - 1 .. xmax``, which gives exactly the devkit's "+1"
overlaps):

- a class's detections over all images, by decreasing score (ties keep their given order);
- each is matched to the ground-truth box of its class in its image with the largest IoU; IoU above the
  threshold (strictly) on a *difficult* box: ignored, neither true nor false positive; on a box not yet
  matched: true positive; on a box already matched (a duplicate) or IoU not above the threshold: false positive;
- recall over the non-difficult boxes, precision over the counted detections;
- AP: the VOC07 11-point interpolation (max precision at recall ≥ 0, 0.1, …, 1, averaged), or all-point
  (VOC2010+: area under the precision envelope).

A class without non-difficult ground truth in the test set has no AP (NaN): it is left out of the mAP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

APMode = Literal["11point", "all"]


@dataclass(frozen=True)
class GroundTruth:
    """The boxes of one image: (N, 4) float, (N,) class indices, (N,) difficult flags."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray


@dataclass(frozen=True)
class Detections:
    """The detections of one image: (M, 4) float boxes, (M,) scores, (M,) class indices."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box with each of ``boxes`` (continuous coordinates)."""
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray, mode: APMode = "11point") -> float:
    """AP from a recall/precision curve: VOC07 11-point interpolation, or the all-point area (VOC2010+)."""
    if mode == "11point":
        points = []
        for threshold in np.arange(0.0, 1.1, 0.1):
            reached = precision[recall >= threshold]
            points.append(float(reached.max()) if reached.size else 0.0)
        return sum(points) / 11.0
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def class_ap(
    detections: Sequence[Detections],
    truths: Sequence[GroundTruth],
    cls: int,
    iou_threshold: float = 0.5,
    mode: APMode = "11point",
) -> float:
    """AP of class ``cls`` over images (``detections[i]`` and ``truths[i]`` are image i); NaN without positives."""
    gt_boxes = [t.boxes[t.labels == cls] for t in truths]
    gt_difficult = [t.difficult[t.labels == cls].astype(bool) for t in truths]
    positives = sum(int((~d).sum()) for d in gt_difficult)
    if positives == 0:
        return math.nan
    images, scores, boxes = [], [], []
    for index, found in enumerate(detections):
        mine = found.labels == cls
        images.append(np.full(int(mine.sum()), index))
        scores.append(found.scores[mine])
        boxes.append(found.boxes[mine])
    image_of = np.concatenate(images) if images else np.zeros(0, int)
    score = np.concatenate(scores) if scores else np.zeros(0)
    box = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    order = np.argsort(-score, kind="stable")
    matched = [np.zeros(len(b), bool) for b in gt_boxes]
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for rank, det in enumerate(order):
        image = image_of[det]
        candidates = gt_boxes[image]
        if len(candidates) == 0:
            fp[rank] = 1
            continue
        overlaps = iou(box[det], candidates)
        best = int(np.argmax(overlaps))
        if overlaps[best] > iou_threshold:
            if gt_difficult[image][best]:
                continue  # neither true nor false positive
            if not matched[image][best]:
                tp[rank] = 1
                matched[image][best] = True
            else:
                fp[rank] = 1  # a duplicate
        else:
            fp[rank] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return average_precision(recall, precision, mode)


def per_class_ap(
    detections: Sequence[Detections],
    truths: Sequence[GroundTruth],
    num_classes: int,
    iou_threshold: float = 0.5,
    mode: APMode = "11point",
) -> list[float]:
    """AP of every class (NaN for a class without non-difficult ground truth)."""
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} images of detections for {len(truths)} images of ground truth")
    return [class_ap(detections, truths, cls, iou_threshold, mode) for cls in range(num_classes)]


def mean_ap(aps: Sequence[float] | Mapping[str, float]) -> float:
    """Mean over the classes that have an AP (NaN ones left out); NaN when none has."""
    values = [v for v in (aps.values() if isinstance(aps, Mapping) else aps) if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


__all__ = ["APMode", "Detections", "GroundTruth", "average_precision", "class_ap", "iou", "mean_ap", "per_class_ap"]
