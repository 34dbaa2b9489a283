"""The ``moco_v2`` pretext task: a query encoder trained by InfoNCE against a momentum key encoder and a queue."""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from sslreg import (
    Augment,
    AugmentSteps,
    Backbone,
    PretextConfig,
    PretextModel,
    PretextTask,
    StepContext,
    batch_shuffle,
    gather,
)

#: MoCo v2's augmentation (SimCLR's, blur included), at a CPU-friendly size.
DEFAULT_AUGMENT = [
    {"name": "RandomResizedCrop", "size": 64, "scale": [0.2, 1.0]},
    {
        "name": "RandomApply",
        "p": 0.8,
        "transforms": [{"name": "ColorJitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}],
    },
    {"name": "RandomGrayscale", "p": 0.2},
    {"name": "RandomApply", "p": 0.5, "transforms": [{"name": "GaussianBlur", "kernel_size": 7, "sigma": [0.1, 2.0]}]},
    {"name": "RandomHorizontalFlip"},
]


class MocoV2Config(PretextConfig):
    """Options of MoCo v2; ``queue_size`` (the number of negatives) is the problem complexity."""

    name: str = "moco_v2"
    augment: AugmentSteps = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_AUGMENT),
        description="torchvision.transforms.v2 steps by name giving each of the two views (square, fixed size).",
    )
    dim: int = Field(128, ge=2, le=4096, description="Dimension of the projected, L2-normalised embedding.")
    hidden_dim: int = Field(0, ge=0, le=16384, description="Hidden width of the MLP projection (0: trunk channels).")
    queue_size: int = Field(65536, ge=1, description="K, keys kept as negatives (the paper's 65536).")
    temperature: float = Field(0.2, gt=0, le=10, description="InfoNCE temperature (MoCo v2: 0.2).")
    momentum: float = Field(0.999, ge=0, le=1, description="Key encoder momentum (its value at the first step).")
    momentum_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="'constant', or 'cosine' from momentum to 1 by the last step (BYOL's)."
    )
    shuffle_bn: bool = Field(True, description="Under DDP, encode keys on a batch shuffled across processes.")
    layer: str | None = Field(None, description="Trunk layer that is pooled and projected (None: the deepest).")
    evaluate: Literal["query", "key"] = Field(
        "query", description="Encoder saved to trunk.pth and evaluated: the query encoder or the momentum one."
    )


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> tuple[torch.Tensor, ...]:
    """(loss, logits): cross-entropy of each query's positive key (column 0) against the queue's negatives.

    ``q`` and ``k`` are (N, D) L2-normalised; ``queue`` is (K, D)."""
    positive = (q * k).sum(dim=1, keepdim=True)
    negative = q @ queue.T
    logits = torch.cat([positive, negative], dim=1).float() / temperature
    labels = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels), logits


def projection(in_channels: int, hidden: int, dim: int) -> nn.Module:
    """MoCo v2's MLP head: Linear, ReLU, Linear."""
    return nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))


class MocoModel(PretextModel):
    """Query encoder (trunk + projection head), its momentum copy (not trained by gradients), and the queue.

    ``queue`` (K, D) and ``queue_ptr`` are buffers: checkpointed and restored with the encoders.
    """

    def __init__(self, trunk: Backbone, head: nn.Module, layer: str, queue_size: int, dim: int) -> None:
        super().__init__(trunk, head)
        self.layer = layer
        self.key_trunk = copy.deepcopy(trunk).requires_grad_(False)
        self.key_head = copy.deepcopy(head).requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.pending: torch.Tensor | None = None  # this step's keys, enqueued after the optimiser step

    def embed(self, trunk: Backbone, head: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised projection of the pooled ``layer`` features."""
        features = trunk(images, [self.layer])[self.layer].mean(dim=(2, 3))
        return F.normalize(head(features), dim=1)

    @torch.no_grad()
    def momentum_update(self, momentum: float) -> None:
        """key <- momentum * key + (1 - momentum) * query, parameter by parameter."""
        for key, query in ((self.key_trunk, self.trunk), (self.key_head, self.head)):
            for k, q in zip(key.parameters(), query.parameters()):
                k.mul_(momentum).add_(q.detach(), alpha=1 - momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` over the oldest entries of the queue (wrapping around)."""
        size = len(self.queue)
        keys = keys[-size:]
        index = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[index] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)


class MocoV2(PretextTask):
    """MoCo v2: two augmented views; the query view's embedding must pick the key view's (momentum encoder)
    among the queue's K negatives (InfoNCE). The key encoder follows the query encoder by momentum after each
    optimiser step, and this step's keys (from every process) replace the oldest in the queue."""

    name: ClassVar[str] = "moco_v2"
    Config: ClassVar[type[MocoV2Config]] = MocoV2Config
    complexity_field: ClassVar[str] = "queue_size"
    consumes: ClassVar[str] = "unlabeled RGB images (H, W, 3) uint8"
    produces: ClassVar[str] = "two views (2, C, S, S), no target; query + momentum key encoders + queue; InfoNCE"

    def __init__(self, config: MocoV2Config) -> None:
        super().__init__(config)
        self.config: MocoV2Config = config
        self.augment = Augment(tuple(config.augment))
        self.contract = self.input_contract()

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, None]:
        """Two independently augmented views of ``image``, normalised by the input contract."""
        views = [torch.from_numpy(self.contract(self.augment(image, rng))) for _ in range(2)]
        return torch.stack(views), None

    def build_model(self, trunk: Backbone) -> MocoModel:
        """Query encoder = trunk + MLP head; key encoder = a copy; the queue starts as random unit vectors."""
        layer = trunk.resolve_layers(self.config.layer)[-1]
        channels = trunk.layer_channels[layer]
        head = projection(channels, self.config.hidden_dim or channels, self.config.dim)
        return MocoModel(trunk, head, layer, self.config.queue_size, self.config.dim)

    def loss(
        self, model: MocoModel, inputs: torch.Tensor, targets: Any, context: StepContext | None = None
    ) -> dict[str, torch.Tensor]:
        """InfoNCE of the query views against the key views and the queue; the top-1 accuracy (%) of the positive."""
        context = context or StepContext()
        q = model.embed(model.trunk, model.head, inputs[:, 0])
        with torch.no_grad():
            seed = context.iteration if self.config.shuffle_bn else 0
            shuffled, unshuffle = batch_shuffle(inputs[:, 1], seed) if self.config.shuffle_bn else (inputs[:, 1], None)
            k = model.embed(model.key_trunk, model.key_head, shuffled)
            k = unshuffle(k) if unshuffle is not None else k
        loss, logits = info_nce(q, k, model.queue, self.config.temperature)
        model.pending = k
        accuracy = (logits.argmax(dim=1) == 0).float().mean() * 100
        return {"loss": loss, "accuracy": accuracy}

    def momentum_at(self, context: StepContext) -> float:
        """The key encoder's momentum at this step."""
        if self.config.momentum_schedule == "cosine":
            return context.cosine(self.config.momentum, 1.0)
        return self.config.momentum

    def after_step(self, model: MocoModel, context: StepContext) -> None:
        """Momentum update of the key encoder, then this step's keys (all processes') into the queue."""
        model.momentum_update(self.momentum_at(context))
        if model.pending is not None:
            model.enqueue(gather(model.pending))
            model.pending = None

    def evaluated_trunk(self, model: MocoModel) -> Backbone:
        """The query encoder's trunk (MoCo's), or the momentum encoder's with ``evaluate: key``."""
        return model.key_trunk if self.config.evaluate == "key" else model.trunk
