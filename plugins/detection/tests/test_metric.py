"""VOC AP: hand-computed cases, and agreement with a plain transcription of the devkit rule on random data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sslreg_detection.annotations import annotation_xml, object_xml, parse_annotation
from sslreg_detection.metric import Detections, GroundTruth, average_precision, class_ap, mean_ap, per_class_ap


def gt(boxes, labels=None, difficult=None) -> GroundTruth:
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    labels = np.zeros(len(boxes), int) if labels is None else np.asarray(labels)
    difficult = np.zeros(len(boxes), bool) if difficult is None else np.asarray(difficult, bool)
    return GroundTruth(boxes, labels, difficult)


def det(boxes, scores, labels=None) -> Detections:
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    labels = np.zeros(len(boxes), int) if labels is None else np.asarray(labels)
    return Detections(boxes, np.asarray(scores, float), labels)


A, B = [0, 0, 10, 10], [20, 20, 30, 30]


def test_true_positive_duplicate_then_second_object():
    # recall .5, .5, 1; precision 1, .5, 2/3
    found = det([A, [0, 0, 10, 9], B], [0.9, 0.8, 0.7])
    truth = gt([A, B])
    assert class_ap([found], [truth], 0, mode="11point") == pytest.approx((6 * 1 + 5 * (2 / 3)) / 11)
    assert class_ap([found], [truth], 0, mode="all") == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))


def test_order_is_by_score_not_by_position():
    found = det([B, [0, 0, 10, 9], A], [0.7, 0.8, 0.9])  # same detections as above, listed in another order
    assert class_ap([found], [gt([A, B])], 0) == pytest.approx((6 + 5 * (2 / 3)) / 11)


def test_difficult_objects_are_neither_true_nor_false_positives():
    truth = gt([A, B], difficult=[True, False])
    found = det([A, B], [0.9, 0.8])  # the first hits the difficult box: ignored
    assert class_ap([found], [truth], 0) == pytest.approx(1.0)
    assert class_ap([found], [gt([A, B])], 0, mode="all") == pytest.approx(1.0)
    # without the difficult flag the same detections find both objects; with it, missing the difficult one
    # costs nothing: recall is over non-difficult boxes only
    assert class_ap([det([B], [0.5])], [truth], 0) == pytest.approx(1.0)


def test_iou_must_exceed_the_threshold():
    truth = gt([A])
    half = det([[0, 0, 10, 5]], [0.9])  # IoU exactly 0.5: not above it
    assert class_ap([half], [truth], 0) == 0.0
    assert class_ap([det([[0, 0, 10, 5.1]], [0.9])], [truth], 0) == pytest.approx(1.0)
    assert class_ap([half], [truth], 0, iou_threshold=0.4) == pytest.approx(1.0)


def test_the_best_overlap_decides_even_when_already_matched():
    # the second detection overlaps A best (already taken) and B a little: VOC counts it false, not a hit on B
    truth = gt([A, [0, 4, 10, 14]])
    found = det([A, [0, 1, 10, 11]], [0.9, 0.8])
    assert class_ap([found], [truth], 0, mode="all") == pytest.approx(0.5)


def test_false_positives_in_other_images_and_other_classes():
    truths = [gt([A]), gt([B], labels=[1])]
    found = [det([A], [0.5]), det([B, B], [0.9, 0.4], labels=[0, 1])]
    # class 0: the 0.9 detection in image 2 (no class-0 box) is false, then a hit: precision 0, 1/2 at recall 1
    assert class_ap(found, truths, 0, mode="all") == pytest.approx(0.5)
    assert class_ap(found, truths, 1, mode="all") == pytest.approx(1.0)


def test_empty_classes():
    truths = [gt([A], labels=[0])]
    aps = per_class_ap([det([], [])], truths, 3)
    assert aps[0] == 0.0  # objects, no detections
    assert math.isnan(aps[1]) and math.isnan(aps[2])  # no objects: no AP, left out of the mean
    assert mean_ap([0.5, math.nan, 1.0]) == pytest.approx(0.75)
    assert math.isnan(mean_ap([math.nan]))
    only_difficult = [gt([A], difficult=[True])]
    assert math.isnan(class_ap([det([A], [0.9])], only_difficult, 0))


def test_eleven_point_interpolation_by_hand():
    recall = np.array([0.2, 0.4, 0.4, 0.8])
    precision = np.array([1.0, 0.5, 0.4, 0.5])
    # t = 0, .1, .2 -> 1; .3, .4 -> .5; .5 .. .8 -> .5; .9, 1 -> 0
    assert average_precision(recall, precision, "11point") == pytest.approx((3 * 1 + 6 * 0.5) / 11)
    assert average_precision(recall, precision, "all") == pytest.approx(0.2 * 1 + 0.2 * 0.5 + 0.4 * 0.5)


# ---- an independent transcription of the devkit's rule (py-faster-rcnn voc_eval.py), on its own coordinates ----


def devkit_ap(dets_by_image, gt_by_image, use_07=True, ovthresh=0.5):
    """Boxes in the devkit's inclusive 1-based pixels; areas and overlaps with +1; loops as in voc_eval.py."""
    class_recs, npos = {}, 0
    for image, objects in gt_by_image.items():
        bbox = np.array([o["bbox"] for o in objects]).reshape(-1, 4)
        difficult = np.array([o["difficult"] for o in objects]).astype(bool)
        npos += sum(~difficult)
        class_recs[image] = {"bbox": bbox, "difficult": difficult, "det": [False] * len(objects)}
    image_ids = [d[0] for d in dets_by_image]
    confidence = np.array([d[1] for d in dets_by_image])
    BB = np.array([d[2] for d in dets_by_image]).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence)
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            inters = iw * ih
            uni = (
                (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                + (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (BBGT[:, 3] - BBGT[:, 1] + 1.0)
                - inters
            )
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


CLASSES = ["a", "b", "c"]


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_the_devkit_rule_on_random_detections(tmp_path: Path, seed: int):
    rng = np.random.default_rng(seed)
    truths, found, raw_gt, raw_det = [], [], [], []
    for image in range(int(rng.integers(8, 20))):
        objects = []
        for _ in range(int(rng.integers(0, 5))):
            x1, y1 = (int(v) for v in rng.integers(1, 150, 2))
            w, h = (int(v) for v in rng.integers(0, 80, 2))
            cls = str(rng.choice(CLASSES))
            objects.append((cls, (x1, y1, x1 + w, y1 + h), bool(rng.random() < 0.2), bool(rng.random() < 0.3)))
        xml = tmp_path / f"{seed}_{image}.xml"
        xml.write_text(annotation_xml("r", f"{image}.jpg", 300, 300, [object_xml(*o) for o in objects]))
        annotation = parse_annotation(xml, CLASSES)  # the reader's coordinates, as the evaluator sees them
        truths.append(GroundTruth(annotation.boxes.astype(float), annotation.labels, annotation.difficult))
        raw_gt.append(objects)
        boxes, scores, labels = [], [], []
        for cls, (x1, y1, x2, y2), _, _ in objects:  # jittered hits, some duplicates
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, 4, 4)
                boxes.append([x1 - 1 + jitter[0], y1 - 1 + jitter[1], x2 + jitter[2], y2 + jitter[3]])
                scores.append(rng.random())
                labels.append(CLASSES.index(cls) if rng.random() < 0.9 else int(rng.integers(3)))
        for _ in range(int(rng.integers(0, 4))):  # pure false positives
            x1, y1 = rng.uniform(0, 200, 2)
            boxes.append([x1, y1, x1 + rng.uniform(1, 60), y1 + rng.uniform(1, 60)])
            scores.append(rng.random())
            labels.append(int(rng.integers(3)))
        found.append(det(boxes, scores, labels))
        raw_det.append((boxes, scores, labels))
    for mode in ("11point", "all"):
        ours = per_class_ap(found, truths, len(CLASSES), 0.5, mode)
        for index, cls in enumerate(CLASSES):
            gt_by_image = {
                image: [{"bbox": box, "difficult": hard} for name, box, hard, _ in objects if name == cls]
                for image, objects in enumerate(raw_gt)
            }
            if sum(not o["difficult"] for objects in gt_by_image.values() for o in objects) == 0:
                assert math.isnan(ours[index])
                continue
            dets = [
                (image, score, [b[0] + 1, b[1] + 1, b[2], b[3]])  # continuous -> the devkit's inclusive pixels
                for image, (boxes, scores, labels) in enumerate(raw_det)
                for b, score, label in zip(boxes, scores, labels)
                if label == index
            ]
            reference = devkit_ap(dets, gt_by_image, use_07=mode == "11point") if dets else 0.0
            assert abs(ours[index] - reference) < 1e-6, (mode, cls, ours[index], reference)
