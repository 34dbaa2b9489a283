"""The detector's model options, as the evaluator's config resolves them (torchvision-free, like layout.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectorOptions:
    """The model options of the evaluator (see its Config for each one's meaning and paper value)."""

    num_classes: int
    anchor_sizes: tuple[int, ...]
    aspect_ratios: tuple[float, ...]
    roi_resolution: int
    roi_sampling_ratio: int
    mlp_dim: int
    rpn_batch_size: int
    rpn_positive_fraction: float
    rpn_pre_nms_train: int
    rpn_post_nms_train: int
    rpn_pre_nms_test: int
    rpn_post_nms_test: int
    rpn_nms: float
    roi_batch_size: int
    roi_positive_fraction: float
    score_threshold: float
    nms: float
    detections_per_image: int
