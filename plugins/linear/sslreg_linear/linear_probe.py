"""The ``linear_probe`` evaluator: Places205-style linear classification of a frozen trunk, layer by layer.

One forward pass of the trunk per batch feeds every requested layer's head; features are pooled exactly as for
the VOC07 SVM benchmark (sslreg.pooling). Protocol: docs/protocol.md#places205-linear-classification.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from sslreg import (
    Backbone,
    DatasetSource,
    EvalContext,
    EvalResult,
    Evaluator,
    InputContract,
    LabeledDataConfig,
    LayerScore,
    LrSteps,
    Preprocess,
    UserError,
    pool_features,
    resolve_device,
)
from sslreg_linear.data import StackTargets, probe_loader
from sslreg_linear.heads import LinearHeads
from sslreg_linear.metrics import mean_average_precision, topk_accuracy
from sslreg_linear.transforms import ImagePipeline, color_jitter

logger = logging.getLogger(__name__)

TargetKind = Literal["class", "multilabel"]


class LinearProbeConfig(LabeledDataConfig):
    """Options of ``linear_probe``. Defaults are sized for a CPU demo; descriptions give the paper's values."""

    batch_size: int = Field(32, ge=1, le=8192, description="Images per step (paper: 256).")
    num_workers: int = Field(0, ge=0, le=128, description="DataLoader worker processes (0: load in the main process).")
    epochs: int = Field(
        6, ge=1, le=1000, description="Passes over train (paper: 140k iterations × 256 ≈ 14.5 Places205 epochs)."
    )
    iterations: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="Train for exactly this many SGD steps instead of `epochs`; `lr_steps` then count iterations"
        " (paper: 140000, lr_steps [40000, 80000, 120000]).",
    )
    lr: float = Field(0.01, gt=0.0, le=100.0, description="Initial learning rate of the heads (paper: 0.01).")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (paper: 0.9).")
    nesterov: bool = Field(True, description="Nesterov momentum (paper: on).")
    weight_decay: float = Field(
        1e-4, ge=0.0, le=1.0, description="L2 on the linear weights; none on the head's BatchNorm (paper: 1e-4)."
    )
    lr_steps: LrSteps = Field(
        default_factory=lambda: [4],
        description="Epochs (iterations when `iterations` is set) after which lr is multiplied by gamma; steps past"
        " the end never fire (paper: iterations 40000, 80000, 120000).",
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="Learning-rate factor at each step (paper: 0.1).")
    batch_norm: bool = Field(
        True,
        description="Per-channel BatchNorm on the pooled map before each linear layer, as the reference"
        " benchmark does; False gives a plain nn.Linear per layer.",
    )
    crop_scale: tuple[float, float] = Field(
        (0.08, 1.0), description="Area range of the training random-resized crop (paper: 0.08-1, torchvision's)."
    )
    test_crop_fraction: float = Field(
        0.875,
        gt=0.0,
        le=1.0,
        description="Test: resize the shorter side to image_size / this, then centre crop (0.875: 256 -> 224;"
        " 1.0: no margin).",
    )
    train_crop: Literal["random_resized", "resize_crop"] = Field(
        "random_resized",
        description="Training crop: 'random_resized' (crop_scale of the area, aspect 3/4-4/3, resized), or"
        " 'resize_crop': shorter side to image_size / test_crop_fraction, then a random image_size square"
        " (paper, Colorization trunks: 256 then a random 224).",
    )
    color_jitter: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Training colour jitter: brightness, contrast and saturation factors in [1 - x, 1 + x], in"
        " random order (torchvision ColorJitter); RGB trunks only; 0: off (paper, RGB trunks: 0.4).",
    )
    lighting: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Training PCA lighting noise (AlexNet's, ImageNet RGB eigenvectors), std of the component"
        " weights; RGB trunks only; 0: off (paper, RGB trunks: 0.1).",
    )
    amp: bool = Field(True, description="Run the frozen trunk under autocast on CUDA (ignored on CPU).")
    seed: int | None = Field(
        None, ge=0, description="Seed for head init, shuffling and crops (None: the experiment seed)."
    )

    @model_validator(mode="after")
    def _one_schedule(self) -> LinearProbeConfig:
        """``iterations`` replaces ``epochs``, and its ``lr_steps`` must be given in iterations, never defaulted."""
        if self.iterations is not None:
            if "epochs" in self.model_fields_set:
                raise ValueError("set either epochs or iterations, not both")
            if "lr_steps" not in self.model_fields_set:
                raise ValueError("iterations: give lr_steps in iterations too (e.g. [40000, 80000, 120000])")
        return self

    @field_validator("crop_scale")
    @classmethod
    def _scale_range(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < low ≤ high ≤ 1, got {scale}")
        return scale

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> LinearProbeConfig:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0 (set nesterov: false or a momentum)")
        return self


def label_space(train: DatasetSource, test: DatasetSource) -> tuple[TargetKind, list[str]]:
    """The shared target kind and class names of train and test, or a clear error."""
    if train.target_kind != test.target_kind:
        raise UserError(
            f"linear_probe: train data {train.name!r} has {train.target_kind!r} targets"
            f" but test data {test.name!r} has {test.target_kind!r}"
        )
    if train.target_kind not in ("class", "multilabel"):
        raise UserError(
            f"linear_probe: {train.name!r} has target_kind {train.target_kind!r};"
            " linear classification needs 'class' or 'multilabel' targets"
        )
    if not train.class_names:
        raise UserError(f"linear_probe: {train.name!r} lists no class names")
    if list(train.class_names) != list(test.class_names):
        raise UserError(f"linear_probe: class names of train ({train.name!r}) and test ({test.name!r}) differ")
    return train.target_kind, list(train.class_names)


def head_loss(logits: torch.Tensor, targets: torch.Tensor, target_kind: TargetKind) -> torch.Tensor:
    """Cross-entropy for class labels; for multi-label targets BCE over present/absent, difficult (0) ignored."""
    if target_kind == "class":
        return F.cross_entropy(logits, targets)
    known = (targets != 0).float()
    total = F.binary_cross_entropy_with_logits(logits, (targets > 0).float(), weight=known, reduction="sum")
    return total / known.sum().clamp(min=1.0)


@dataclass
class TrainingLog:
    """What training did: passes over train begun, SGD steps, unreadable images per pass, last pass's mean losses."""

    epochs: int = 0
    iterations: int = 0
    skipped: int = 0
    mean_loss: dict[str, float] = field(default_factory=dict)


@dataclass
class ProbeRun:
    """One evaluation: the frozen trunk, its heads, and how images reach them."""

    config: LinearProbeConfig
    backbone: Backbone
    heads: LinearHeads
    layers: list[str]
    target_kind: TargetKind
    num_classes: int
    image_size: int
    contract: InputContract
    device: torch.device
    seed: int

    def loader(self, source: DatasetSource, train: bool, epoch: int) -> torch.utils.data.DataLoader:
        """One epoch of ``source``: augmented and shuffled for training, centre-cropped in order for testing."""
        cfg = self.config
        normalise = Preprocess(self.image_size, self.contract)
        jitter = color_jitter(cfg.color_jitter) if train and cfg.color_jitter > 0 else None
        pipeline = ImagePipeline(
            normalise, train, cfg.crop_scale, cfg.test_crop_fraction, cfg.train_crop, jitter, cfg.lighting
        )
        targets = StackTargets(self.target_kind, self.num_classes, source.name)
        return probe_loader(
            source, pipeline, targets, epoch=epoch, seed=self.seed, shuffle=train,
            batch_size=cfg.batch_size, num_workers=cfg.num_workers,
        )  # fmt: skip

    def pooled(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """ONE trunk pass (no gradients) for all layers, then the protocol's pooling."""
        amp = self.config.amp and self.device.type == "cuda"
        with torch.no_grad(), torch.autocast(self.device.type, enabled=amp):
            maps = self.backbone(images.to(self.device, non_blocking=True), self.layers)
        maps = {layer: maps[layer].float() for layer in self.layers}
        at_protocol_size = self.image_size == self.backbone.input_size
        return pool_features(maps, self.backbone.pool_specs, at_protocol_size)

    def train(self, source: DatasetSource) -> TrainingLog:
        """SGD on all heads at once, for ``epochs`` passes or exactly ``iterations`` steps.

        With ``iterations`` the learning rate steps per iteration and the last pass over train may be partial.
        """
        cfg = self.config
        optimizer = torch.optim.SGD(
            self.heads.param_groups(cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.lr_steps, gamma=cfg.gamma)
        per_iteration = cfg.iterations is not None
        log = TrainingLog()
        while (log.iterations < cfg.iterations) if per_iteration else (log.epochs < cfg.epochs):
            self.heads.train()
            totals, steps, skipped = dict.fromkeys(self.layers, 0.0), 0, 0
            for batch in self.loader(source, True, log.epochs):
                skipped += batch.bad
                if batch.data is None or (cfg.batch_norm and len(batch.data[0]) < 2):
                    continue  # nothing readable, or one image: no batch statistics for the head's BatchNorm
                images, targets = batch.data
                targets = targets.to(self.device)
                logits = self.heads(self.pooled(images))
                losses = {layer: head_loss(out, targets, self.target_kind) for layer, out in logits.items()}
                optimizer.zero_grad(set_to_none=True)
                sum(losses.values()).backward()
                optimizer.step()
                for layer, loss in losses.items():
                    totals[layer] += loss.item()
                steps += 1
                log.iterations += 1
                if per_iteration:
                    schedule.step()
                    if log.iterations == cfg.iterations:
                        break
            if not per_iteration:
                schedule.step()
            if steps == 0:
                raise UserError(f"linear_probe: no usable training batch in {source.name!r}")
            log.epochs += 1
            log.skipped = max(log.skipped, skipped)  # a complete pass sees every unreadable image
            log.mean_loss = {layer: total / steps for layer, total in totals.items()}
            logger.info("linear_probe pass %d (%d iterations): loss %s", log.epochs, log.iterations, log.mean_loss)
        return log

    @torch.no_grad()
    def predict(self, source: DatasetSource) -> tuple[dict[str, torch.Tensor], torch.Tensor, int]:
        """Logits of every head on the readable images of ``source`` (on the CPU), their targets, the skip count."""
        self.heads.eval()
        skipped = 0
        outputs: dict[str, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        targets: list[torch.Tensor] = []
        for batch in self.loader(source, False, 0):
            skipped += batch.bad
            if batch.data is None:
                continue
            images, batch_targets = batch.data
            for layer, out in self.heads(self.pooled(images)).items():
                outputs[layer].append(out.float().cpu())
            targets.append(batch_targets)
        if not targets:
            raise UserError(f"linear_probe: no readable test images in {source.name!r}")
        return {layer: torch.cat(chunks) for layer, chunks in outputs.items()}, torch.cat(targets), skipped


class LinearProbe(Evaluator):
    """Linear classifiers on each frozen layer's pooled features, trained together from one trunk pass."""

    name: ClassVar[str] = "linear_probe"
    Config: ClassVar[type[LinearProbeConfig]] = LinearProbeConfig
    consumes: ClassVar[str] = "a frozen Backbone; labelled train/test data (class or multi-label targets)"
    produces: ClassVar[str] = "top-1 (and top-5 with ≥5 classes) accuracy per layer; mAP for multi-label data"

    config: LinearProbeConfig

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """Train one head per layer on ``train``, score them on ``test``."""
        cfg = self.config
        device = resolve_device(cfg.device, context.device)
        seed = context.seed if cfg.seed is None else cfg.seed
        layers = backbone.resolve_layers(cfg.layers)
        contract = backbone.input_contract  # what the trunk was trained on (fails here for a trunk without one)
        if contract.space != "rgb" and (cfg.color_jitter > 0 or cfg.lighting > 0):
            raise UserError(
                f"linear_probe: color_jitter and lighting are for RGB trunks, but this {backbone.name} trunk takes"
                f" the {contract.space} input (a Colorization trunk); set color_jitter: 0 and lighting: 0"
            )
        train_source, test_source = context.build_dataset(cfg.train), context.build_dataset(cfg.test)
        target_kind, class_names = label_space(train_source, test_source)
        backbone.freeze().to(device)
        heads = LinearHeads(
            {layer: backbone.layer_channels[layer] for layer in layers},
            backbone.pool_specs,
            len(class_names),
            batch_norm=cfg.batch_norm,
            seed=seed,
        ).to(device)
        image_size = cfg.image_size or backbone.input_size
        run = ProbeRun(cfg, backbone, heads, layers, target_kind, len(class_names), image_size, contract, device, seed)
        log = run.train(train_source)
        logits, targets, test_skipped = run.predict(test_source)
        details = {
            "num_classes": len(class_names),
            "train_images": len(train_source) - log.skipped,
            "test_images": len(targets),
            "skipped_images": {"train": log.skipped, "test": test_skipped},
            "image_size": image_size,
            "epochs": log.epochs,
            "iterations": log.iterations,
            "head": "batchnorm+linear" if cfg.batch_norm else "linear",
            "final_train_loss": log.mean_loss,
        }
        return self._results(target_kind, logits, targets, details)

    def _results(
        self, target_kind: TargetKind, logits: dict[str, torch.Tensor], targets: torch.Tensor, details: dict
    ) -> list[EvalResult]:
        """top-1 (+ top-5 with ≥5 classes) for class targets; mAP (multi-label, BCE-trained heads) otherwise."""

        def result(metric: str, score) -> EvalResult:
            layers = {layer: LayerScore(mean=score(out)) for layer, out in logits.items()}
            return EvalResult(evaluator=self.name, metric=metric, layers=layers, details=details)

        if target_kind == "multilabel":
            return [result("mAP (multi-label)", lambda out: mean_average_precision(out, targets))]
        results = [result("top-1", lambda out: topk_accuracy(out, targets, 1))]
        if details["num_classes"] >= 5:
            results.append(result("top-5", lambda out: topk_accuracy(out, targets, 5)))
        return results
