"""The ``nyuv2_normals`` evaluator: surface normals from a frozen trunk with a trained dense decoder.

Protocol: docs/protocol.md#surface-normals. The trunk stays frozen and runs under no_grad (the shared trunk is
never copied or changed); only the decoder trains. Default formulation as the reference: k-means of the training
normals into 40 unit centres, per-pixel 40-way cross-entropy over valid pixels, prediction = probability-weighted
sum of the centres renormalised; ``formulation: regression`` predicts unit normals with a cosine loss instead.
Metrics stream over every valid test pixel in bounded memory (metrics.py). Several runs (fresh decoder, other
seed) give mean ± std. Under torchrun (``distributed = True``: the runner calls it on every rank), data are
sharded by rank, the decoder is wrapped in DistributedDataParallel and the metric accumulators are all-reduced.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from sslreg import (
    Backbone,
    Collate,
    DatasetSource,
    DataSpec,
    EvalContext,
    EvalResult,
    Evaluator,
    EvaluatorConfig,
    LayerScore,
    LrSteps,
    UserError,
    make_loader,
    resolve_device,
)
from sslreg_normals.codebook import IGNORE, decode, kmeans_centres, labels, sample_normals
from sslreg_normals.decoder import DenseDecoder
from sslreg_normals.metrics import THRESHOLDS, NormalErrors
from sslreg_normals.transforms import NormalsPipeline, StackPairs

logger = logging.getLogger(__name__)

#: (summary key, metric name, higher is better) of the five numbers, in the paper's column order.
METRICS = (
    ("mean", "normals mean°", False),
    ("median", "normals median°", False),
    *((f"{t:g}", f"normals % < {t:g}°", True) for t in THRESHOLDS),
)


class NormalsConfig(EvaluatorConfig):
    """Options of ``nyuv2_normals``. Defaults are sized for the CPU demo; configs/paper/normals.yaml is NYUv2 scale."""

    train: DataSpec = Field(
        default_factory=lambda: DataSpec(name="rendered_normals", split="train"),
        description="Training images with normals (protocol: nyuv2 train, 795 images).",
    )
    test: DataSpec = Field(
        default_factory=lambda: DataSpec(name="rendered_normals", split="test"),
        description="Test images with normals (protocol: nyuv2 test, 654 images).",
    )
    separate_layers: bool = Field(
        False,
        description="False: one decoder fuses all 'layers' (one result column, named 'res3+res4+...');"
        " True: one decoder per layer, trained together from one trunk pass (one column per layer).",
    )
    formulation: Literal["classification", "regression"] = Field(
        "classification",
        description="'classification': k-means codebook + per-pixel cross-entropy (the reference);"
        " 'regression': unit normals with a cosine loss.",
    )
    num_clusters: int = Field(40, ge=2, le=1000, description="k-means centres of the codebook (reference: 40).")
    kmeans_samples: int = Field(
        200_000, ge=100, le=10_000_000, description="Training normals sampled (evenly over images) for k-means."
    )
    scale: float = Field(
        1.0, gt=0.0, le=4.0, description="Resize factor of the input images (metrics stay at ground-truth size)."
    )
    crop_size: int | None = Field(
        None, ge=8, le=4096, description="Side of the random training crop after scaling (None: whole images)."
    )
    flip: bool = Field(
        False, description="Random horizontal flips in training (negates x: only for data whose x is image-right)."
    )
    iterations: int = Field(300, ge=1, le=10_000_000, description="Training iterations (decoder updates) per run.")
    batch_size: int = Field(8, ge=1, le=4096, description="Training images per iteration (all ranks together).")
    test_batch_size: int = Field(4, ge=1, le=4096, description="Test images per forward pass (equal sizes needed).")
    lr: float = Field(0.02, gt=0.0, le=100.0, description="Peak learning rate of SGD.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum.")
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0, description="SGD weight decay (conv weights only).")
    schedule: Literal["poly", "cosine", "step", "constant"] = Field(
        "poly", description="Learning-rate schedule over the iterations (poly: (1 - t/T)^poly_power)."
    )
    poly_power: float = Field(0.9, gt=0.0, le=10.0, description="Exponent of the poly schedule.")
    lr_steps: LrSteps = Field(
        default_factory=list, description="'step' schedule: iterations after which lr is multiplied by gamma."
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="'step' schedule: factor at each step.")
    warmup_iters: int = Field(0, ge=0, description="Linear warm-up iterations.")
    decoder_width: int = Field(128, ge=4, le=2048, description="Channels of the decoder.")
    runs: int = Field(2, ge=1, le=100, description="Independent runs (fresh decoder, seed + run); mean ± std.")
    cache_features: bool = Field(
        False,
        description="Run the trunk once per image and keep its features (float16, CPU) for every iteration and run:"
        " for small data without crop_size/flip (the demo); NYUv2 at full size would need tens of GB.",
    )
    num_workers: int = Field(0, ge=0, le=128, description="DataLoader worker processes (0: load in this process).")
    amp: bool = Field(True, description="Run the frozen trunk under autocast on CUDA (ignored on CPU).")
    device: str | None = Field(None, description="Torch device, e.g. 'cuda:0' (None: the runner's device).")
    seed: int | None = Field(None, ge=0, description="Seed of k-means, decoders and data order (None: experiment's).")

    @model_validator(mode="after")
    def _consistent(self) -> NormalsConfig:
        if self.warmup_iters >= self.iterations:
            raise ValueError(f"warmup_iters ({self.warmup_iters}) must be below iterations ({self.iterations})")
        if self.cache_features and (self.crop_size is not None or self.flip):
            raise ValueError("cache_features needs fixed training inputs: set crop_size: null and flip: false")
        return self


def lr_factor(config: NormalsConfig, step: int) -> float:
    """The learning-rate multiplier at iteration ``step`` (0-based)."""
    if step < config.warmup_iters:
        return (step + 1) / (config.warmup_iters + 1)
    progress = (step - config.warmup_iters) / max(1, config.iterations - config.warmup_iters)
    if config.schedule == "poly":
        return (1.0 - progress) ** config.poly_power
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.schedule == "step":
        return config.gamma ** sum(step >= milestone for milestone in config.lr_steps)
    return 1.0


def check_bad(source: DatasetSource, bad: int, seen: int, what: str) -> None:
    """One line and stop when more than the source's max_bad_fraction of ``seen`` samples were unreadable."""
    limit = getattr(source.config, "max_bad_fraction", 0.05)
    if seen and bad / seen > limit:
        raise UserError(
            f"nyuv2_normals: {bad} of {seen} {what} samples of {source.name!r} unreadable ({bad / seen:.1%}),"
            f" more than max_bad_fraction={limit:g}"
        )


def regression_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean (1 - cos) between predicted and true normals over valid pixels."""
    valid = target.abs().sum(dim=1) > 0
    cosine = F.cosine_similarity(out, target, dim=1, eps=1e-8)
    return (1.0 - cosine)[valid].mean()


#: One training or test step: features per tap, targets (N, 3, H, W) on the device, the input size (H, W).
Step = tuple[dict[str, torch.Tensor], torch.Tensor, tuple[int, int]]


@dataclass
class Cached:
    """Features of a whole (rank's share of a) dataset, kept for ``cache_features``."""

    features: dict[str, torch.Tensor]
    targets: torch.Tensor
    size: tuple[int, int]
    bad: int


@dataclass
class NormalsRun:
    """One evaluation setting: the frozen trunk, the taps, the codebook, and how data reach them."""

    config: NormalsConfig
    trunk: Backbone
    groups: dict[str, list[str]]  # result column -> taps its decoder reads
    centres: torch.Tensor | None
    device: torch.device
    seed: int
    rank: int = 0  # this process among the ranks evaluating together (EvalContext.rank / world_size)
    world_size: int = 1
    cache: dict[tuple[str, str, bool], Cached] = field(default_factory=dict)
    test_skipped: int = 0

    @property
    def taps(self) -> list[str]:
        """Every tap any decoder reads, in trunk order."""
        wanted = {tap for taps in self.groups.values() for tap in taps}
        return [tap for tap in self.trunk.layer_names if tap in wanted]

    def loader(self, source: DatasetSource, train: bool, seed: int, epoch: int) -> torch.utils.data.DataLoader:
        """This rank's share of ``source``: shuffled crops for training, whole images in order for testing."""
        cfg = self.config
        rank, world = self.rank, self.world_size
        pipeline = NormalsPipeline(self.trunk.input_contract, train, cfg.scale, cfg.crop_size, cfg.flip)
        return make_loader(
            source,
            pipeline,
            batch_size=max(1, cfg.batch_size // world) if train else cfg.test_batch_size,
            seed=seed,
            epoch=epoch,
            shuffle=train,
            num_workers=cfg.num_workers,
            collate=Collate(StackPairs(source.name)),
            rank=rank,
            world_size=world,
            pad=train,
            pin_memory=self.device.type == "cuda",
        )

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """ONE no-grad pass of the frozen trunk for every tap."""
        amp = self.config.amp and self.device.type == "cuda"
        with torch.no_grad(), torch.autocast(self.device.type, enabled=amp):
            return self.trunk(images.to(self.device, non_blocking=True), self.taps)

    def decoders(self, seed: int) -> nn.ModuleDict:
        """Fresh decoders (one per result column), initialised from ``seed``; DDP-wrapped in a process group."""
        outputs = self.config.num_clusters if self.config.formulation == "classification" else 3
        channels, strides = self.trunk.layer_channels, self.trunk.layer_strides
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            heads = nn.ModuleDict(
                {
                    column: DenseDecoder({t: channels[t] for t in taps}, strides, self.config.decoder_width, outputs)
                    for column, taps in self.groups.items()
                }
            )
        heads = heads.to(self.device)
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            heads = nn.ModuleDict(
                {name: nn.parallel.DistributedDataParallel(head, device_ids=ids) for name, head in heads.items()}
            )
        return heads

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over valid pixels against the nearest centres, or the cosine loss."""
        if self.config.formulation == "regression":
            return regression_loss(out, target)
        return F.cross_entropy(out, labels(target, self.centres), ignore_index=IGNORE)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Unit normals from decoder outputs."""
        if self.config.formulation == "regression":
            return F.normalize(out.float(), dim=1)
        return decode(out, self.centres)

    def batches(self, source: DatasetSource, seed: int) -> Iterator[Step]:
        """Training steps for ever (epoch after epoch); unreadable samples counted and checked every epoch."""
        if self.config.cache_features:
            yield from self.cached_batches(source, seed)
            return
        epoch = 0
        while True:
            bad = seen = 0
            for batch in self.loader(source, True, seed, epoch):
                bad, seen = bad + batch.bad, seen + batch.seen
                if batch.data is not None:
                    images, target = batch.data
                    yield self.features(images), target.to(self.device, non_blocking=True), tuple(images.shape[-2:])
            check_bad(source, bad, seen, "training")
            if seen == bad:
                raise UserError(f"nyuv2_normals: no readable training sample in {source.name!r}")
            epoch += 1

    def extract(self, source: DatasetSource, train: bool) -> Cached:
        """The trunk's features (float16, CPU) and the targets of this rank's share of ``source``, once."""
        key = (source.name, repr(source.config), train)
        if key not in self.cache:
            parts: dict[str, list[torch.Tensor]] = {tap: [] for tap in self.taps}
            targets, bad, seen, size = [], 0, 0, (0, 0)
            for batch in self.loader(source, False, self.seed, 0):
                bad, seen = bad + batch.bad, seen + batch.seen
                if batch.data is None:
                    continue
                images, target = batch.data
                for tap, value in self.features(images).items():
                    half = value.to("cpu", torch.float16)
                    parts[tap].append(half if torch.isfinite(half).all() else value.float().cpu())  # fp16 overflow
                targets.append(target)
                size = tuple(images.shape[-2:])
            check_bad(source, bad, seen, "training" if train else "test")
            if not targets:
                raise UserError(f"nyuv2_normals: no readable sample in {source.name!r}")
            self.cache[key] = Cached({t: torch.cat(v) for t, v in parts.items()}, torch.cat(targets), size, bad)
        return self.cache[key]

    def cached_batches(self, source: DatasetSource, seed: int) -> Iterator[Step]:
        """Random batches of cached features, a new order every epoch (seeded by the run and the epoch)."""
        cached = self.extract(source, True)
        count, batch_size = len(cached.targets), max(1, self.config.batch_size // self.world_size)
        for epoch in itertools.count():
            order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
            for start in range(0, count, batch_size):
                index = order[start : start + batch_size]
                features = {tap: value[index].to(self.device).float() for tap, value in cached.features.items()}
                yield features, cached.targets[index].to(self.device), cached.size

    def test_batches(self, source: DatasetSource) -> Iterator[Step]:
        """The test set once, in order: (features, targets at ground-truth size, input size) per batch."""
        if self.config.cache_features:
            cached = self.extract(source, False)
            step = self.config.test_batch_size
            for start in range(0, len(cached.targets), step):
                features = {t: v[start : start + step].to(self.device).float() for t, v in cached.features.items()}
                yield features, cached.targets[start : start + step].to(self.device), cached.size
            return
        bad = seen = 0
        for batch in self.loader(source, False, self.seed, 0):
            bad, seen = bad + batch.bad, seen + batch.seen
            if batch.data is not None:
                images, target = batch.data
                yield self.features(images), target.to(self.device, non_blocking=True), tuple(images.shape[-2:])
        check_bad(source, bad, seen, "test")
        self.test_skipped = bad

    def train(self, heads: nn.ModuleDict, source: DatasetSource, seed: int) -> dict[str, float]:
        """SGD on the decoders for ``iterations`` steps; the mean loss of the last 10% of steps per column."""
        cfg = self.config
        decay = [p for n, p in heads.named_parameters() if p.ndim > 1]
        rest = [p for n, p in heads.named_parameters() if p.ndim <= 1]
        optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
            lr=cfg.lr, momentum=cfg.momentum,
        )  # fmt: skip
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step))
        heads.train()
        tail = max(1, cfg.iterations // 10)
        totals = dict.fromkeys(heads, 0.0)
        batches = self.batches(source, seed)
        for step in range(cfg.iterations):
            features, target, size = next(batches)
            out_size = tuple(target.shape[-2:])  # the input's, or the ground truth's when cached at another scale
            losses = {column: self.loss(head(features, size, out_size), target) for column, head in heads.items()}
            total = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            if torch.isfinite(total):  # a batch without a valid pixel has no loss
                total.backward()
                optimizer.step()
            schedule.step()
            if step >= cfg.iterations - tail:
                for column, loss in losses.items():
                    totals[column] += float(loss.detach()) / tail
            if (step + 1) % max(1, cfg.iterations // 10) == 0:
                logger.info("nyuv2_normals step %d/%d: loss %.4f", step + 1, cfg.iterations, float(total.detach()))
        return totals

    @torch.no_grad()
    def test(self, heads: nn.ModuleDict, source: DatasetSource) -> tuple[dict[str, NormalErrors], int, int]:
        """Stream the test set once: every decoder's errors over all valid pixels, images read, images skipped."""
        heads.eval()
        errors = {column: NormalErrors(self.device) for column in heads}
        images_read = 0
        for features, target, size in self.test_batches(source):
            valid = target.abs().sum(dim=1) > 0
            for column, head in heads.items():
                errors[column].update(self.predict(head(features, size, tuple(target.shape[-2:]))), target, valid)
            images_read += len(target)
        if self.world_size > 1:
            for accumulator in errors.values():
                accumulator.all_reduce()
        key = (source.name, repr(source.config), False)
        counts = torch.tensor([images_read, self.cache[key].bad if key in self.cache else self.test_skipped])
        if self.world_size > 1:
            counts = counts.to(self.device)
            torch.distributed.all_reduce(counts)
        return errors, int(counts[0]), int(counts[1])


class NyuNormals(Evaluator):
    """Surface normals (NYUv2 protocol) from frozen taps through a trained dense decoder; five streaming metrics."""

    name: ClassVar[str] = "nyuv2_normals"
    Config: ClassVar[type[NormalsConfig]] = NormalsConfig
    consumes: ClassVar[str] = "a frozen Backbone; train/test images with normals (nyuv2, rendered_normals)"
    produces: ClassVar[str] = "mean/median angular error (°, lower better) and % within 11.25/22.5/30° per tap set"

    config: NormalsConfig
    distributed: ClassVar[bool] = True  # under torchrun every rank trains on its share; metrics are all-reduced

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """k-means codebook on train, then per run: train fresh decoders, stream the test metrics."""
        cfg = self.config
        started = time.perf_counter()
        device = resolve_device(cfg.device, context.device)
        seed = context.seed if cfg.seed is None else cfg.seed
        taps = backbone.resolve_layers(cfg.layers)
        groups = {tap: [tap] for tap in taps} if cfg.separate_layers else {"+".join(taps): taps}
        train_source, test_source = context.build_dataset(cfg.train), context.build_dataset(cfg.test)
        for source in (train_source, test_source):
            if source.target_kind != "normals":
                raise UserError(
                    f"nyuv2_normals: dataset {source.name!r} has {source.target_kind!r} targets; it needs normals"
                    " (e.g. nyuv2, rendered_normals)"
                )
        backbone.freeze().to(device)
        details: dict[str, Any] = {"formulation": cfg.formulation, "runs": cfg.runs, "iterations": cfg.iterations}
        centres = None
        if cfg.formulation == "classification":
            normals, skipped = sample_normals(train_source, cfg.kmeans_samples, seed, cfg.num_workers)
            check_bad(train_source, skipped, len(train_source), "training")
            centres = torch.from_numpy(kmeans_centres(normals, cfg.num_clusters, seed)).to(device)
            details.update(num_clusters=cfg.num_clusters, kmeans_samples=len(normals))
        run = NormalsRun(cfg, backbone, groups, centres, device, seed, context.rank, context.world_size)
        per_run: dict[str, list[dict[str, float]]] = {column: [] for column in groups}
        final_loss: list[dict[str, float]] = []
        for index in range(cfg.runs):
            heads = run.decoders(seed + index)
            final_loss.append(run.train(heads, train_source, seed + index))
            errors, images, test_skipped = run.test(heads, test_source)
            for column, accumulator in errors.items():
                per_run[column].append(accumulator.summary())
            details.update(test_images=images, test_pixels=next(iter(errors.values())).count)
            details.update(skipped_images={"test": test_skipped})
            logger.info("nyuv2_normals run %d/%d: %s", index + 1, cfg.runs, {c: v[-1] for c, v in per_run.items()})
        details.update(
            train_images=len(train_source), per_run=per_run, final_train_loss=final_loss,
            taps=groups, scale=cfg.scale, crop_size=cfg.crop_size, seconds=round(time.perf_counter() - started, 1),
        )  # fmt: skip
        return [
            EvalResult(
                evaluator=self.name,
                metric=metric,
                higher_is_better=higher,
                layers={column: LayerScore.of([values[key] for values in runs]) for column, runs in per_run.items()},
                details=details,
            )
            for key, metric, higher in METRICS
        ]
