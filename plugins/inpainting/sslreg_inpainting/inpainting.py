"""The ``inpainting`` pretext task: the trunk encodes an image with a region blanked out, a decoder paints the
region back; reconstruction (L2) loss over the region, and an optional adversarial term (off by default)."""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call

from sslreg import Augment, AugmentSteps, Backbone, PretextConfig, PretextModel, PretextTask, UserError

DEFAULT_AUGMENT = [{"name": "RandomResizedCrop", "size": 64, "scale": [0.5, 1.0]}, {"name": "RandomHorizontalFlip"}]


class InpaintingConfig(PretextConfig):
    """Options of the context encoder; ``mask_fraction`` (how much to paint back) is the problem complexity."""

    name: str = "inpainting"
    augment: AugmentSteps = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_AUGMENT),
        description="torchvision.transforms.v2 steps by name giving the image (square, side a multiple of 8).",
    )
    mask: Literal["centre", "blocks"] = Field(
        "centre", description="'centre': the central square; 'blocks': random rectangles (Pathak's random block)."
    )
    mask_fraction: float = Field(
        0.25, gt=0.0, le=0.75, description="Area masked: the centre square's share, or the blocks' least cover."
    )
    adversarial_weight: float = Field(
        0.0, ge=0.0, le=1.0, description="Weight of the adversarial term (Pathak: 0.001; 0: reconstruction only)."
    )
    layer: str | None = Field(None, description="Trunk layer the decoder starts from (None: the deepest).")
    decoder_channels: int = Field(64, ge=8, le=1024, description="Channels of the decoder's last upsampling block.")


def centre_mask(size: int, fraction: float) -> np.ndarray:
    """(size, size) bool: the central square holding ``fraction`` of the area."""
    side = max(1, round(size * math.sqrt(fraction)))
    start = (size - side) // 2
    mask = np.zeros((size, size), dtype=bool)
    mask[start : start + side, start : start + side] = True
    return mask


def block_mask(size: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(size, size) bool: random rectangles (sides size/8 .. size/3) until at least ``fraction`` is covered."""
    mask = np.zeros((size, size), dtype=bool)
    low, high = max(1, size // 8), max(2, size // 3)
    while mask.mean() < fraction:
        height, width = (int(v) for v in rng.integers(low, high + 1, size=2))
        top, left = int(rng.integers(0, size - height + 1)), int(rng.integers(0, size - width + 1))
        mask[top : top + height, left : left + width] = True
    return mask


def decoder(in_channels: int, stride: int, channels: int) -> nn.Module:
    """Transposed-convolution blocks (x2 each, channels halving down to ``channels``) back to full resolution,
    then a 3x3 convolution to RGB."""
    steps = int(math.log2(stride))
    if 2**steps != stride:
        raise UserError(f"inpainting: the decoder needs a power-of-two layer stride, not {stride}")
    layers: list[nn.Module] = []
    width = in_channels
    for step in range(steps):
        out = max(channels, channels * 2 ** (steps - step - 1))
        layers += [nn.ConvTranspose2d(width, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        width = out
    return nn.Sequential(*layers, nn.Conv2d(width, 3, 3, padding=1))


def discriminator() -> nn.Module:
    """A small convolutional real/fake classifier of whole images (strided convs, LeakyReLU, global pool)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 4, 2, 1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(32, 64, 4, 2, 1),
        nn.BatchNorm2d(64),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(64, 1, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


class InpaintingModel(PretextModel):
    """Encoder (the trunk, one layer) + decoder head, and a discriminator when the adversarial term is on."""

    def __init__(self, trunk: Backbone, head: nn.Module, layer: str, adversarial: bool) -> None:
        super().__init__(trunk, head)
        self.layer = layer
        if adversarial:
            self.discriminator = discriminator()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Masked images (N, 3, S, S) -> reconstructions (N, 3, S, S)."""
        reconstruction = self.head(self.trunk(images, [self.layer])[self.layer])
        if reconstruction.shape[-2:] != images.shape[-2:]:
            raise UserError(
                f"inpainting: the decoder gives {tuple(reconstruction.shape[-2:])} for {tuple(images.shape[-2:])}"
                " images; make the image side a multiple of the trunk layer's stride"
            )
        return reconstruction


class Inpainting(PretextTask):
    """Context encoders: reconstruct a masked region (the centre, or random blocks) of an augmented image from
    its context; L2 loss over the region, plus an adversarial term when ``adversarial_weight`` > 0.

    ``make_sample`` returns the masked image (masked pixels at the input contract's zero, i.e. the mean colour)
    and (the whole normalised image, the mask (1, S, S))."""

    name: ClassVar[str] = "inpainting"
    Config: ClassVar[type[InpaintingConfig]] = InpaintingConfig
    complexity_field: ClassVar[str] = "mask_fraction"
    consumes: ClassVar[str] = "unlabeled RGB images (H, W, 3) uint8"
    produces: ClassVar[str] = "masked image (3, S, S) + (image, mask); trunk + deconvolution decoder; masked L2"

    def __init__(self, config: InpaintingConfig) -> None:
        super().__init__(config)
        self.config: InpaintingConfig = config
        self.augment = Augment(tuple(config.augment))
        self.contract = self.input_contract()

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, Any]:
        """(masked image, (image, mask)), all (C, S, S) float32 normalised by the input contract."""
        crop = self.augment(image, rng)
        size = crop.shape[0]
        if crop.shape[1] != size:
            raise UserError(f"inpainting: the augment pipeline gives {size}x{crop.shape[1]} images; end it square")
        if self.config.mask == "centre":
            mask = centre_mask(size, self.config.mask_fraction)
        else:
            mask = block_mask(size, self.config.mask_fraction, rng)
        target = torch.from_numpy(self.contract(crop))
        mask_tensor = torch.from_numpy(mask)[None].float()
        return target * (1 - mask_tensor), (target, mask_tensor)

    def build_model(self, trunk: Backbone) -> InpaintingModel:
        """The trunk as encoder, a decoder from ``layer`` back to the input size, a discriminator if adversarial."""
        layer = trunk.resolve_layers(self.config.layer)[-1]
        head = decoder(trunk.layer_channels[layer], trunk.layer_strides[layer], self.config.decoder_channels)
        return InpaintingModel(trunk, head, layer, self.config.adversarial_weight > 0)

    def loss(self, model: InpaintingModel, inputs: torch.Tensor, targets: Any) -> dict[str, torch.Tensor]:
        """Mean squared error over the masked pixels; with the adversarial term, generator and discriminator
        losses are added, each reaching only its own network's parameters."""
        image, mask = targets
        reconstruction = model(inputs)
        error = ((reconstruction.float() - image) ** 2 * mask).sum() / (mask.sum() * image.shape[1]).clamp(min=1)
        if self.config.adversarial_weight == 0:
            return {"loss": error, "reconstruction": error.detach()}
        composite = image * (1 - mask) + reconstruction * mask
        frozen = {name: value.detach() for name, value in model.discriminator.named_parameters()}
        fooled = functional_call(model.discriminator, frozen, (composite,))  # gradient to the generator only
        generator = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        real, fake = model.discriminator(image), model.discriminator(composite.detach())
        critic = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        total = (1 - self.config.adversarial_weight) * error + self.config.adversarial_weight * generator + critic
        return {"loss": total, "reconstruction": error.detach(), "generator": generator.detach(), "critic": critic}
