"""The ``colorization`` pretext task: predict the ab colour of every pixel from L, as Q-way classification."""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
import torch
from pydantic import Field, model_validator

from sslreg import Backbone, InputContract, PretextConfig, PretextTask, UserError
from sslreg_colorization import priors as prior_lib
from sslreg_colorization.bins import PAPER_Q, effective_k, load_bins
from sslreg_colorization.encoding import soft_encode_sparse
from sslreg_colorization.lab import L_CENTER, l_to_input, rgb_to_lab
from sslreg_colorization.model import ColorizationHead, ColorizationModel

log = logging.getLogger("sslreg.colorization")


class ColorizationConfig(PretextConfig):
    """Options of the colorization task; ``num_neighbors`` is the paper's problem complexity K."""

    num_neighbors: int = Field(
        10, ge=1, le=PAPER_Q, description="K: nearest ab bins in each pixel's soft target (paper: 2..313; ≥ Q = all)."
    )
    bins: Literal["zhang313", "srgb262"] = Field(
        "zhang313",
        description="ab bin set: Zhang et al.'s Q = 313 (the paper's) or the 262 that 8-bit sRGB colours reach.",
    )
    sigma: float = Field(
        5.0, gt=0, description="Gaussian σ (ab units) of the soft encoding and of the prior smoothing."
    )
    rebalance_lambda: float = Field(
        0.5, ge=0.0, le=1.0, description="λ mixing smoothed priors with uniform in the rebalancing weights (1: none)."
    )
    resize: int | None = Field(
        256,
        ge=16,
        le=4096,
        description="Short side resized to this before the random image_size crop (the reference's 256; None: crop"
        " the image as it is, scaled up only when smaller than the crop).",
    )
    image_size: int = Field(224, ge=16, le=1024, description="Side of the square training crop (the paper's 224).")
    target_stride: int = Field(
        4, ge=1, le=32, description="ab targets: every target_stride-th pixel of the crop (point sampling, as Zhang)."
    )
    gray_threshold: float | None = Field(
        5.0,
        ge=0,
        description="An image whose every target pixel has |a|, |b| ≤ this is grayscale: left out of the loss and"
        " the priors (Zhang's NonGrayMaskLayer: 5; None: keep every image).",
    )
    input_scale: float = Field(50.0, gt=0, description="Trunk input is (L - 50) / input_scale (50: [-1, 1]; 1: Caffe).")
    flip: bool = Field(True, description="Random horizontal flip of the training crop.")
    layer: str | None = Field(None, description="Trunk layer the head reads (None: the deepest).")
    head_channels: int = Field(256, ge=0, le=4096, description="Hidden 1×1 conv width of the head (0: one 1×1 conv).")
    cache_dir: str | None = Field(
        None,
        description="Cache for the srgb262 bins (None: $SSLREG_CACHE/colorization or ~/.cache/sslreg/colorization).",
    )
    priors_name: str | None = Field(
        None, description="Cache the colour priors under this name and reuse them without reading the data again."
    )
    prior_max_images: int = Field(
        20000, ge=1, description="Training images read (one at a time) by prepare() for the colour priors."
    )
    prior_max_pixels: int = Field(16384, ge=64, description="Pixels per image (point subsample) for the priors.")

    @model_validator(mode="after")
    def _check_sizes(self) -> ColorizationConfig:
        if self.image_size % self.target_stride:
            raise ValueError(f"image_size {self.image_size} must be a multiple of target_stride {self.target_stride}")
        if self.resize is not None and self.resize < self.image_size:
            raise ValueError(f"resize ({self.resize}) must be ≥ image_size ({self.image_size}), or null")
        return self


class Colorization(PretextTask):
    """Colorization (Zhang et al. 2016): L in, ab as soft K-nearest-bin distributions out, rebalanced loss."""

    name: ClassVar[str] = "colorization"
    Config: ClassVar[type[PretextConfig]] = ColorizationConfig
    consumes: ClassVar[str] = "unlabeled RGB images (H, W, 3) uint8"
    produces: ClassVar[str] = "(L input (1, S, S), ab target (2, S/stride, S/stride)); trunk + bin head; rebalanced CE"
    input_channels: ClassVar[int] = 1
    complexity_field: ClassVar[str] = "num_neighbors"

    config: ColorizationConfig

    def __init__(self, config: ColorizationConfig) -> None:
        super().__init__(config)
        self._bins: np.ndarray | None = None
        #: What the colour priors were counted on (images used, grayscale images left out), after ``prepare``.
        self.prior_counts: prior_lib.PriorCounts | None = None
        self._weights: np.ndarray | None = None
        self._device_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._warned_uniform = False

    # -- state that depends on the data and the gamut -------------------------------------------------------
    @property
    def bins(self) -> np.ndarray:
        """The ab bin centres (Q, 2) of the ``bins`` option."""
        if self._bins is None:
            self._bins = load_bins(self.config.bins, self.config.cache_dir)
        return self._bins

    @property
    def num_bins(self) -> int:
        """Q, the number of ab bins."""
        return len(self.bins)

    @property
    def k(self) -> int:
        """K actually used: ``num_neighbors``, or Q when it is larger."""
        return effective_k(self.config.num_neighbors, self.num_bins)

    @property
    def class_weights(self) -> np.ndarray:
        """Rebalancing weight per bin; uniform (with a warning) when ``prepare`` was never called."""
        if self._weights is None:
            if not self._warned_uniform:
                warnings.warn(
                    "colorization: prepare() was not called, so class rebalancing is off (uniform weights)",
                    stacklevel=3,
                )
                self._warned_uniform = True
            return np.ones(self.num_bins)
        return self._weights

    @property
    def prepare_limit(self) -> int:
        """How many training images ``prepare`` reads (``prior_max_images``); the runner offers this many."""
        return self.config.prior_max_images

    def prepare(self, images: Iterable[np.ndarray], cache_dir: Path) -> None:
        """Fit the rebalancing weights from the colour priors of up to ``prior_max_images`` training images.

        The images are read one at a time and point-subsampled; grayscale ones are left out (and counted). The
        counts are written to ``cache_dir/priors-<key>.json`` with the number of images used, under
        ``priors_name`` when set (then a cached file is used without reading ``images``), else under a hash of
        the sample and the bins. ``prior_counts`` keeps the record.
        """
        bins, name, cache_dir = self.bins, self.config.priors_name, Path(cache_dir)
        counts = prior_lib.load_counts(prior_lib.priors_cache_path(cache_dir, name), bins) if name else None
        if counts is None:
            sample = itertools.islice(images, self.config.prior_max_images)
            counts = prior_lib.count_priors(sample, bins, self.config.prior_max_pixels, self.config.gray_threshold)
            if counts.num_images == 0:
                raise UserError(
                    "colorization.prepare: no colour training images were given for the colour priors"
                    f" ({counts.gray_images} grayscale images left out)"
                )
            prior_lib.save_counts(prior_lib.priors_cache_path(cache_dir, name or counts.key), counts, bins)
        if counts.num_images < self.config.prior_max_images:
            log.info(
                "colorization: colour priors from %d images (%d grayscale left out); prior_max_images is %d",
                counts.num_images,
                counts.gray_images,
                self.config.prior_max_images,
            )
        else:
            log.info("colorization: colour priors from %d images", counts.num_images)
        self.prior_counts = counts
        self.set_priors(prior_lib.smooth_priors(counts.counts, bins, self.config.sigma))

    def set_priors(self, smoothed: np.ndarray) -> None:
        """Use these smoothed priors p̃ (Q,) for the rebalancing weights."""
        if smoothed.shape != (self.num_bins,):
            raise ValueError(f"colorization: priors must have shape ({self.num_bins},), got {smoothed.shape}")
        self._weights = prior_lib.rebalance_weights(smoothed, self.config.rebalance_lambda)
        self._device_cache.clear()

    def _tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Bins and class weights on ``device`` (kept per device)."""
        if device not in self._device_cache:
            self._device_cache[device] = (
                torch.as_tensor(self.bins, dtype=torch.float32, device=device),
                torch.as_tensor(self.class_weights, dtype=torch.float32, device=device),
            )
        return self._device_cache[device]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_device_cache"] = {}  # tensors (maybe on GPU) stay out of DataLoader workers
        return state

    # -- the PretextTask interface ----------------------------------------------------------------------------
    def input_contract(self) -> InputContract:
        """The trunk sees the L of Lab as (L - 50) / input_scale, in training and in every evaluation."""
        return InputContract(space="lab_l", mean=(L_CENTER,), std=(self.config.input_scale,))

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(L input (1, S, S) float32, ab target (2, S/stride, S/stride) float32): the short side resized to
        ``resize``, a random S×S crop, a random flip; the ab targets are every ``target_stride``-th pixel of the
        crop (point sampling, as the reference's stride-4 1×1 convolution with weight 1), not area averages."""
        crop = random_crop(resize_short_side(image, self.config.resize), self.config.image_size, rng)
        if self.config.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        lab = rgb_to_lab(np.ascontiguousarray(crop))
        stride = self.config.target_stride
        ab = lab[::stride, ::stride, 1:]
        inputs = torch.from_numpy(l_to_input(lab[..., 0], self.config.input_scale)).unsqueeze(0)
        return inputs, torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1)))

    def build_model(self, trunk: Backbone) -> ColorizationModel:
        """Trunk plus a 1×1-conv bin classifier on ``layer`` (default: the trunk's deepest layer)."""
        in_channels = getattr(trunk.config, "in_channels", 1)
        if in_channels != self.input_channels:
            raise UserError(
                f"colorization: the trunk {trunk.name!r} takes {in_channels} input channels; set"
                f" pretrain.backbone.in_channels: 1 (the L channel)"
            )
        layer = trunk.resolve_layers(self.config.layer)[-1]
        if self.config.num_neighbors > self.num_bins:
            warnings.warn(
                f"colorization: num_neighbors={self.config.num_neighbors} exceeds the Q={self.num_bins} bins of"
                f" {self.config.bins}; every pixel uses all {self.num_bins} bins",
                stacklevel=2,
            )
        bins = torch.as_tensor(self.bins, dtype=torch.float32)
        head = ColorizationHead(trunk.layer_channels[layer], bins, self.config.head_channels)
        return ColorizationModel(trunk, head, layer)

    def loss(self, model: ColorizationModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Rebalanced multinomial cross-entropy: mean over pixels of −w(nearest bin)·Σ_q z_q log softmax_q, with
        the pixels of grayscale images weighted 0 (Zhang's NonGrayMaskLayer; they still count in the mean)."""
        bins, weights = self._tensors(targets.device)
        logits = model(inputs, tuple(targets.shape[-2:]))
        log_p = torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1)  # (N, h, w, Q)
        index, soft = soft_encode_sparse(targets, bins, self.k, self.config.sigma)
        cross_entropy = -(soft * log_p.gather(3, index)).sum(dim=3)
        pixel_weights = weights[index[..., 0]]
        if self.config.gray_threshold is not None:
            colour = (targets.abs() > self.config.gray_threshold).flatten(1).any(dim=1)
            pixel_weights = pixel_weights * colour.to(pixel_weights.dtype)[:, None, None]
        return (pixel_weights * cross_entropy).mean()

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The default bin set (Q, its ab range) and K, for ``sslreg info colorization``."""
        config = cls.Config(name=cls.name)
        bins = load_bins(config.bins)
        a, b = bins[:, 0], bins[:, 1]
        return {
            "bins": config.bins,
            "Q": len(bins),
            "ab_range": f"a {a.min():.0f}..{a.max():.0f}, b {b.min():.0f}..{b.max():.0f} (step 10)",
            "K (num_neighbors)": config.num_neighbors,
            "other bin sets": "srgb262 (the 262 of the 313 that 8-bit sRGB colours reach)",
        }


def resize_short_side(image: np.ndarray, side: int | None) -> np.ndarray:
    """The image with its shorter side resized to ``side`` (aspect kept; area filter when shrinking); None: as is."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"colorization: expected an RGB image (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    if side is None or min(height, width) == side:
        return image
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size``×``size`` crop; images smaller than ``size`` are first scaled up (shorter side = size)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"colorization: expected an RGB image (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    if min(height, width) < size:
        scale = size / min(height, width)
        width, height = max(size, round(width * scale)), max(size, round(height * scale))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return image[top : top + size, left : left + size]
