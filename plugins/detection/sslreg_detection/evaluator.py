"""The ``voc07_detection`` evaluator: Faster R-CNN on a frozen trunk, VOC mAP at IoU 0.5, mean ± std over runs.

Protocol: docs/protocol.md#object-detection (Detectron's Faster R-CNN R-50-C4, trunk frozen through res4, base
LR 0.002; VOC07 trainval or VOC07+12 trainval, tested on VOC07 test). The model is in ``model.py``, the data path
in ``data.py`` and the metric in ``metric.py``; this module trains and scores ``runs`` detectors (seeds
``seed``, ``seed + 1``, ...), each from the same frozen trunk.

Distributed (``distributed = True``): under torchrun the runner calls ``evaluate`` on every rank with
``EvalContext.rank``/``world_size`` set; each rank trains on its share of every global batch under
DistributedDataParallel and scores its share of the test images; the detections are gathered and every rank
returns the same result. With ``world_size`` 1 it runs in this one process.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.distributed as dist
from pydantic import Field, model_validator

from sslreg import (
    Backbone,
    DatasetSource,
    DataSpec,
    EvalContext,
    EvalResult,
    Evaluator,
    EvaluatorConfig,
    LayerScore,
    LrSteps,
    UserError,
    resolve_device,
)
from sslreg_detection.data import DetectionTransform, Item, detection_loader, items_to
from sslreg_detection.layout import Layout, choose_layout
from sslreg_detection.metric import Detections, GroundTruth, mean_ap, per_class_ap
from sslreg_detection.options import DetectorOptions

logger = logging.getLogger(__name__)


class DetectionConfig(EvaluatorConfig):
    """Options of ``voc07_detection``. Defaults are the paper's (Detectron Faster R-CNN R-50-C4 on VOC07); the
    data defaults to the embedded demo set. configs/detection/demo.yaml sizes everything for a CPU."""

    layers: Literal["auto"] | list[str] = Field(  # type: ignore[assignment]
        "auto",
        description="The tap the detector reads: 'auto' (res4 in the C4 layout for ResNets; else the deepest"
        " stride-16 layer, or the one with the stride nearest 16), or a list with one layer.",
    )
    train: DataSpec = Field(
        default_factory=lambda: DataSpec(name="embedded_detection", split="trainval"),
        description="Training boxes (paper: voc_detection VOC07 trainval, or VOC2007 + VOC2012 trainval).",
    )
    test: DataSpec = Field(
        default_factory=lambda: DataSpec(name="embedded_detection", split="test"),
        description="Test boxes with the same classes (paper: VOC07 test).",
    )
    freeze_at: str = Field(
        "res4",
        description="Frozen through this layer (paper: res4, Detectron's FREEZE_AT=4); C4 layout: res2..res5."
        " BatchNorm is frozen everywhere.",
    )
    short_side: int = Field(600, ge=16, le=2000, description="Images resized to this shorter side (paper: 600).")
    max_side: int = Field(1000, ge=16, le=4000, description="...unless the longer side passes this (paper: 1000).")
    flip: bool = Field(True, description="Random horizontal flips in training (paper: on).")
    train_difficult: bool = Field(False, description="Train on difficult boxes too (paper: no).")
    runs: int = Field(1, ge=1, le=100, description="Independent runs (seeds seed, seed+1, ...): mAP mean ± std.")
    iterations: int = Field(
        50_000, ge=1, le=10_000_000, description="SGD steps (paper Faster R-CNN: 50k VOC07, 100k VOC07+12)."
    )
    lr_steps: LrSteps = Field(
        default_factory=lambda: [38_000],
        description="Steps at which the LR is multiplied by gamma (paper: [38000] VOC07, [65000] VOC07+12).",
    )
    lr: float = Field(0.002, gt=0.0, le=10.0, description="Base learning rate (paper: 0.002).")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="LR factor at each step (Detectron: 0.1).")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (Detectron: 0.9).")
    weight_decay: float = Field(
        1e-4, ge=0.0, le=1.0, description="Weight decay, not on biases (Detectron: 1e-4, biases at 2x LR, no decay)."
    )
    warmup_iters: int = Field(500, ge=0, description="Linear LR warm-up steps (Detectron: 500).")
    warmup_factor: float = Field(1 / 3, gt=0.0, le=1.0, description="LR factor at the first step (Detectron: 1/3).")
    batch_size: int = Field(2, ge=1, le=1024, description="Images per step, all ranks together (Detectron: 2).")
    num_workers: int = Field(0, ge=0, le=128, description="DataLoader worker processes (0: the main process).")
    anchor_sizes: list[int] = Field(
        default_factory=lambda: [32, 64, 128, 256, 512],
        description="RPN anchor sides in pixels (Detectron: 32-512) at aspect_ratios, on the stride-16 map.",
    )
    aspect_ratios: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0], description="Anchor h/w ratios.")
    rpn_batch_size: int = Field(256, ge=1, le=100_000, description="Anchors sampled per image (Detectron: 256).")
    rpn_positive_fraction: float = Field(0.5, gt=0.0, le=1.0, description="Positive anchors (Detectron: 0.5).")
    rpn_pre_nms_train: int = Field(12_000, ge=1, description="Proposals before NMS, training (Detectron: 12000).")
    rpn_post_nms_train: int = Field(2000, ge=1, description="Proposals after NMS, training (Detectron: 2000).")
    rpn_pre_nms_test: int = Field(6000, ge=1, description="Proposals before NMS, testing (Detectron: 6000).")
    rpn_post_nms_test: int = Field(1000, ge=1, description="Proposals after NMS, testing (Detectron: 1000).")
    rpn_nms: float = Field(0.7, gt=0.0, le=1.0, description="RPN NMS IoU (Detectron: 0.7).")
    roi_batch_size: int = Field(512, ge=1, le=100_000, description="RoIs sampled per image (Detectron: 512).")
    roi_positive_fraction: float = Field(0.25, gt=0.0, le=1.0, description="Foreground RoIs (Detectron: 0.25).")
    roi_resolution: int = Field(
        14, ge=1, le=64, description="RoIAlign output side (C4: 14, res5 halves it; fallback: use 7)."
    )
    roi_sampling_ratio: int = Field(0, ge=0, le=16, description="RoIAlign samples per bin side (0: adaptive).")
    mlp_dim: int = Field(1024, ge=1, le=65536, description="Fallback layout: width of the two-layer MLP box head.")
    score_threshold: float = Field(0.0, ge=0.0, le=1.0, description="Detections below this score are dropped.")
    nms: float = Field(0.3, gt=0.0, le=1.0, description="Per-class NMS IoU on the detections (Detectron: 0.3).")
    detections_per_image: int = Field(100, ge=1, le=10_000, description="Most detections kept per image (100).")
    iou_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="IoU a true positive must pass (VOC: 0.5).")
    ap_mode: Literal["11point", "all"] = Field(
        "11point", description="AP interpolation: VOC07's 11-point (paper), or all-point (VOC2010+)."
    )
    log_interval: int = Field(20, ge=1, description="Log the losses every this many steps.")
    device: str | None = Field(None, description="Torch device, e.g. 'cuda:0' (None: the runner's device).")
    seed: int | None = Field(None, ge=0, description="Seed of the first run (None: the experiment seed).")

    @model_validator(mode="after")
    def _sizes(self) -> DetectionConfig:
        if self.max_side < self.short_side:
            raise ValueError(f"max_side={self.max_side} is smaller than short_side={self.short_side}")
        if not self.anchor_sizes or not self.aspect_ratios or min(self.anchor_sizes) < 1:
            raise ValueError("anchor_sizes and aspect_ratios need at least one positive value each")
        return self

    def detector_options(self, num_classes: int) -> DetectorOptions:
        """The model part of the options."""
        return DetectorOptions(
            num_classes=num_classes,
            anchor_sizes=tuple(self.anchor_sizes),
            aspect_ratios=tuple(self.aspect_ratios),
            roi_resolution=self.roi_resolution,
            roi_sampling_ratio=self.roi_sampling_ratio,
            mlp_dim=self.mlp_dim,
            rpn_batch_size=self.rpn_batch_size,
            rpn_positive_fraction=self.rpn_positive_fraction,
            rpn_pre_nms_train=self.rpn_pre_nms_train,
            rpn_post_nms_train=self.rpn_post_nms_train,
            rpn_pre_nms_test=self.rpn_pre_nms_test,
            rpn_post_nms_test=self.rpn_post_nms_test,
            rpn_nms=self.rpn_nms,
            roi_batch_size=self.roi_batch_size,
            roi_positive_fraction=self.roi_positive_fraction,
            score_threshold=self.score_threshold,
            nms=self.nms,
            detections_per_image=self.detections_per_image,
        )


def class_space(train: DatasetSource, test: DatasetSource) -> list[str]:
    """The classes shared by train and test, or a clear error."""
    for source in (train, test):
        if source.target_kind != "boxes":
            raise UserError(
                f"voc07_detection: dataset {source.name!r} has {source.target_kind!r} targets; detection needs"
                " boxes (voc_detection, embedded_detection)"
            )
    if list(train.class_names) != list(test.class_names) or not train.class_names:
        raise UserError(f"voc07_detection: class names of train ({train.name!r}) and test ({test.name!r}) differ")
    return list(train.class_names)


def lr_factor(step: int, cfg: DetectionConfig) -> float:
    """Step schedule with a linear warm-up from ``warmup_factor`` (Detectron's)."""
    factor = cfg.gamma ** sum(step >= milestone for milestone in cfg.lr_steps)
    if step < cfg.warmup_iters:
        alpha = step / cfg.warmup_iters
        factor *= cfg.warmup_factor * (1 - alpha) + alpha
    return factor


def optimizer_for(model: torch.nn.Module, cfg: DetectionConfig) -> torch.optim.SGD:
    """SGD over the trainable parameters; biases at twice the LR without weight decay (Detectron's default)."""
    weights, biases = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (biases if name.endswith(".bias") else weights).append(parameter)
    groups = [
        {"params": weights, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": biases, "lr": 2 * cfg.lr, "weight_decay": 0.0},
    ]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=cfg.lr, momentum=cfg.momentum)


@dataclass
class DetectionRun:
    """One detector: built on the frozen trunk, trained, scored."""

    cfg: DetectionConfig
    trunk: Backbone
    layout: Layout
    classes: list[str]
    device: torch.device
    seed: int
    rank: int = 0
    world_size: int = 1

    def say(self, line: str) -> None:
        """A progress line (rank 0): ``sslreg run`` shows the plugins' INFO lines on the terminal and in the log."""
        if self.rank == 0:
            logger.info(line)

    def all_have(self, flag: bool) -> bool:
        """``flag`` on every rank (one tiny all-reduce under DDP, so that no rank steps alone)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([int(flag)], device=self.device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def transform(self, source: DatasetSource, train: bool) -> DetectionTransform:
        cfg = self.cfg
        contract = self.trunk.input_contract
        return DetectionTransform(
            contract, cfg.short_side, cfg.max_side, train, cfg.flip, cfg.train_difficult, source.name
        )

    def batches(self, source: DatasetSource) -> Iterator[tuple[int, list[Item]]]:
        """Training batches of this rank, epoch after epoch: (images the loader skipped, items)."""
        cfg = self.cfg
        if cfg.batch_size % self.world_size:
            raise UserError(
                f"voc07_detection: batch_size {cfg.batch_size} is not a multiple of the {self.world_size} ranks"
            )
        epoch = 0
        while True:
            loader = detection_loader(
                source, self.transform(source, True), batch_size=cfg.batch_size // self.world_size, seed=self.seed,
                epoch=epoch, num_workers=cfg.num_workers, rank=self.rank, world_size=self.world_size,
            )  # fmt: skip
            for batch in loader:
                yield batch.bad, batch.data or []
            epoch += 1

    def train(self, model: torch.nn.Module, source: DatasetSource) -> dict[str, float]:
        """``iterations`` SGD steps; returns the mean of each loss over the last ``log_interval`` steps."""
        cfg = self.cfg
        net = model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
        optimizer = optimizer_for(model, cfg)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
        model.train()
        recent: dict[str, list[float]] = {}
        self.skipped_train = 0
        steps = 0
        for skipped, items in self.batches(source):
            self.skipped_train += skipped
            if not self.all_have(bool(items)):
                continue  # every image of the batch unreadable (on some rank: all ranks skip the step together)
            images, targets = items_to(items, self.device)
            losses = net(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise UserError(
                    f"voc07_detection: the loss is {loss.item()} at step {steps + 1} (run seed {self.seed});"
                    " lower lr or raise warmup_iters"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            steps += 1
            for name, value in losses.items():
                recent.setdefault(name, []).append(float(value.detach()))
                del recent[name][: -cfg.log_interval]
            if steps % cfg.log_interval == 0 or steps == cfg.iterations:
                summary = ", ".join(f"{name} {np.mean(values):.3f}" for name, values in recent.items())
                self.say(f"voc07_detection seed {self.seed} step {steps}/{cfg.iterations}: {summary}")
            if steps >= cfg.iterations:
                break
        means = {name: float(np.mean(values)) for name, values in recent.items()}
        if self.world_size > 1:  # the mean over ranks, and the images every rank skipped
            totals = torch.tensor([*means.values(), float(self.skipped_train)], dtype=torch.float64)
            dist.all_reduce(totals)
            means = {name: float(total) / self.world_size for name, total in zip(means, totals.tolist())}
            self.skipped_train = int(totals[-1])
        return means

    @torch.no_grad()
    def detect(self, model: torch.nn.Module, source: DatasetSource) -> tuple[list[Detections], list[GroundTruth], int]:
        """Detections and ground truth of every readable test image (all ranks' shares), and the skipped count."""
        model.eval()
        found: list[tuple[str, Detections, GroundTruth]] = []
        skipped = 0
        loader = detection_loader(
            source, self.transform(source, False), batch_size=max(1, self.cfg.batch_size // self.world_size),
            seed=self.seed, epoch=0, num_workers=self.cfg.num_workers, rank=self.rank, world_size=self.world_size,
        )  # fmt: skip
        for batch in loader:
            skipped += batch.bad
            if not batch.data:
                continue
            images, _ = items_to(batch.data, self.device)
            for item, output in zip(batch.data, model(images)):
                found.append((item.key, original_scale(output, item), truth_of(item)))
        if self.world_size > 1:
            shares: list = [None] * self.world_size
            dist.all_gather_object(shares, (found, skipped))
            found = sorted((entry for share, _ in shares for entry in share), key=lambda entry: entry[0])
            skipped = sum(count for _, count in shares)
        return [d for _, d, _ in found], [t for _, _, t in found], skipped


def original_scale(output: dict[str, torch.Tensor], item: Item) -> Detections:
    """The model's detections in the original image's pixels, labels from 0."""
    sx, sy = item.scale
    height, width = item.size
    boxes = output["boxes"].float().cpu().numpy() / np.float32([sx, sy, sx, sy])
    boxes = np.clip(boxes, 0, np.float32([width, height, width, height]))
    return Detections(boxes, output["scores"].float().cpu().numpy(), output["labels"].cpu().numpy() - 1)


def truth_of(item: Item) -> GroundTruth:
    """The original ground truth of a test item."""
    truth = item.truth
    labels = np.asarray(truth["labels"], np.int64)
    difficult = np.asarray(truth.get("difficult", np.zeros(len(labels), bool)), bool)
    return GroundTruth(np.asarray(truth["boxes"], np.float64).reshape(-1, 4), labels, difficult)


class VocDetectionEvaluator(Evaluator):
    """Faster R-CNN (C4) on the frozen trunk, VOC07-style detection mAP@0.5 (mean ± std over runs)."""

    name: ClassVar[str] = "voc07_detection"
    Config: ClassVar[type[DetectionConfig]] = DetectionConfig
    consumes: ClassVar[str] = "a frozen Backbone; train/test datasets with box targets (voc_detection, ...)"
    produces: ClassVar[str] = "mAP (VOC, IoU 0.5) at the tap the detector reads, mean ± std over runs"

    config: DetectionConfig
    distributed: ClassVar[bool] = True  # under torchrun every rank trains on its share; detections are gathered

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """Train ``runs`` detectors on ``train`` (trunk frozen through ``freeze_at``), score each on ``test``."""
        cfg = self.config
        device = resolve_device(cfg.device, context.device)
        seed = context.seed if cfg.seed is None else cfg.seed
        rank, world_size = context.rank, context.world_size
        train_source, test_source = context.build_dataset(cfg.train), context.build_dataset(cfg.test)
        classes = class_space(train_source, test_source)
        backbone.freeze().to(device)
        layout = choose_layout(backbone, cfg.layers, cfg.freeze_at)
        started = time.perf_counter()
        runs, per_class_runs = [], []
        for run in range(cfg.runs):
            outcome = self._one_run(backbone, layout, classes, device, seed + run, rank, world_size, train_source,
                                    test_source)  # fmt: skip
            runs.append(outcome)
            per_class_runs.append(outcome["per_class_ap"])
        per_class = {name: _mean([aps[name] for aps in per_class_runs]) for name in classes}
        details = {
            "layout": layout.name,
            "tap": layout.tap,
            "freeze_at": layout.frozen,
            "ap_mode": cfg.ap_mode,
            "iou_threshold": cfg.iou_threshold,
            "per_class_ap": per_class,
            "runs": runs,
            "classes": classes,
            "train_images": len(train_source),
            "test_images": runs[0]["test_images"],
            "skipped": {
                "train": {**getattr(train_source, "skipped", {}), "unreadable_reads": runs[0]["skipped_train_images"]},
                "test": {**getattr(test_source, "skipped", {}), "unreadable": runs[0]["skipped_test_images"]},
            },
            "short_side": cfg.short_side,
            "iterations": cfg.iterations,
            "seconds": round(time.perf_counter() - started, 1),
        }
        score = LayerScore.of([outcome["mAP"] for outcome in runs])
        return [EvalResult(evaluator=self.name, metric="mAP", layers={layout.tap: score}, details=details)]

    def _one_run(
        self,
        backbone: Backbone,
        layout: Layout,
        classes: list[str],
        device: torch.device,
        seed: int,
        rank: int,
        world_size: int,
        train_source: DatasetSource,
        test_source: DatasetSource,
    ) -> dict:
        from sslreg_detection.model import build_detector, trainable_parameters  # torchvision: only when run

        cfg = self.config
        run = DetectionRun(cfg, backbone, layout, classes, device, seed, rank, world_size)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the caller's RNG stays as it was
            torch.manual_seed(seed)
            model = build_detector(backbone, layout, cfg.detector_options(len(classes))).to(device)
            losses = run.train(model, train_source)
            detections, truths, skipped_test = run.detect(model, test_source)
        if not truths:
            raise UserError(f"voc07_detection: no readable test image in {test_source.name!r}")
        aps = per_class_ap(detections, truths, len(classes), cfg.iou_threshold, cfg.ap_mode)
        score = mean_ap(aps)
        if math.isnan(score):
            raise UserError(f"voc07_detection: the test data {test_source.name!r} has no non-difficult box")
        run.say(f"voc07_detection seed {seed}: mAP {100 * score:.2f} on {len(truths)} test images")
        return {
            "seed": seed,
            "mAP": 100 * score,
            "per_class_ap": {name: None if math.isnan(ap) else 100 * ap for name, ap in zip(classes, aps)},
            "final_losses": losses,
            "trainable_parameters": sum(p.numel() for p in trainable_parameters(model)),
            "test_images": len(truths),
            "skipped_train_images": run.skipped_train,
            "skipped_test_images": skipped_test,
        }


def _mean(values: list[float | None]) -> float | None:
    """Mean over runs; None for a class without AP (no non-difficult test box)."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None
