"""Context encoder: the conformance kit, masks, samples, the loss over the masked region, and the adversarial
term reaching each network only through its own loss."""

from __future__ import annotations

import numpy as np
import sslreg_inpainting
import torch
from pydantic import Field
from sslreg_inpainting import Inpainting, InpaintingConfig, block_mask, centre_mask

from sslreg import stack
from sslreg.testing import TinyBackbone, check_plugin, check_pretext

SMALL = [{"name": "RandomResizedCrop", "size": 32, "scale": [0.5, 1.0]}]


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)


def test_conformance_kit_passes():
    entries = check_plugin(sslreg_inpainting)
    assert [(entry.kind, entry.name) for entry in entries] == [("pretext", "inpainting")]


class BlocksAdversarialConfig(InpaintingConfig):
    mask: str = Field("blocks", description="Random blocks.")
    adversarial_weight: float = Field(0.001, description="On.")


class BlocksAdversarial(Inpainting):
    """Inpainting with random blocks and the adversarial term, as the kit's defaults."""

    Config = BlocksAdversarialConfig


def test_conformance_kit_passes_with_blocks_and_the_adversarial_term():
    check_pretext(BlocksAdversarial)


def test_masks_cover_what_they_say():
    centre = centre_mask(32, 0.25)
    assert centre.sum() == 16 * 16 and centre[8:24, 8:24].all()
    blocks = block_mask(32, 0.3, np.random.default_rng(0))
    assert blocks.mean() >= 0.3
    assert (block_mask(32, 0.3, np.random.default_rng(0)) == blocks).all()


def test_sample_blanks_the_region_and_keeps_the_image_as_target():
    task = Inpainting(InpaintingConfig(augment=SMALL))
    masked, (target, mask) = task.make_sample(image(), np.random.default_rng(2))
    assert masked.shape == target.shape == (3, 32, 32) and mask.shape == (1, 32, 32)
    assert torch.equal(masked[:, 8:24, 8:24], torch.zeros(3, 16, 16))
    assert torch.equal(masked * (1 - mask), target * (1 - mask)) and target[:, 8:24, 8:24].abs().sum() > 0


def test_loss_is_the_masked_squared_error():
    task = Inpainting(InpaintingConfig(augment=SMALL))
    model = task.build_model(TinyBackbone())
    inputs, (target, mask) = stack([task.make_sample(image(i), np.random.default_rng(i)) for i in range(2)])
    out = task.loss(model, inputs, (target, mask))
    with torch.no_grad():
        reconstruction = model(inputs)
    expected = ((reconstruction - target) ** 2)[:, :, 8:24, 8:24].mean()
    torch.testing.assert_close(out["loss"].detach(), expected)
    assert set(out) == {"loss", "reconstruction"} and not hasattr(model, "discriminator")


def test_adversarial_terms_train_each_network_on_its_own_loss():
    task = Inpainting(InpaintingConfig(augment=SMALL, adversarial_weight=0.5))
    torch.manual_seed(0)
    model = task.build_model(TinyBackbone())
    batch = stack([task.make_sample(image(i), np.random.default_rng(i)) for i in range(2)])
    out = task.loss(model, *batch)
    assert set(out) == {"loss", "reconstruction", "generator", "critic"}
    # the discriminator's gradient is the critic's alone; the decoder's has no critic part
    critic_grads = torch.autograd.grad(out["critic"], list(model.discriminator.parameters()), retain_graph=True)
    total_grads = torch.autograd.grad(out["loss"], list(model.discriminator.parameters()), retain_graph=True)
    for a, b in zip(critic_grads, total_grads):
        torch.testing.assert_close(a, b)
    generator_part = torch.autograd.grad(out["loss"] - out["critic"], list(model.head.parameters()), retain_graph=True)
    total_head = torch.autograd.grad(out["loss"], list(model.head.parameters()))
    for a, b in zip(generator_part, total_head):
        torch.testing.assert_close(a, b)
