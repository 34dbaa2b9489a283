"""The ``colorization`` pretext task: predict the ab colour of every pixel from L, as Q-way classification."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from pydantic import Field

from sslreg import Backbone, InputContract, PretextConfig, PretextTask, UserError
from sslreg_colorization import priors as prior_lib
from sslreg_colorization.bins import PAPER_Q, effective_k, gamut_bins
from sslreg_colorization.encoding import soft_encode_sparse
from sslreg_colorization.lab import L_CENTER, l_to_input, rgb_to_lab
from sslreg_colorization.model import ColorizationHead, ColorizationModel


class ColorizationConfig(PretextConfig):
    """Options of the colorization task; ``num_neighbors`` is the paper's problem complexity K."""

    num_neighbors: int = Field(
        10, ge=1, le=PAPER_Q, description="K: nearest ab bins in each pixel's soft target (paper: 2..313; ≥ Q = all)."
    )
    sigma: float = Field(
        5.0, gt=0, description="Gaussian σ (ab units) of the soft encoding and of the prior smoothing."
    )
    rebalance_lambda: float = Field(
        0.5, ge=0.0, le=1.0, description="λ mixing smoothed priors with uniform in the rebalancing weights (1: none)."
    )
    image_size: int = Field(224, ge=16, le=1024, description="Side of the square training crop (the paper's 224).")
    target_stride: int = Field(4, ge=1, le=32, description="ab targets are image_size / target_stride per side.")
    input_scale: float = Field(50.0, gt=0, description="Trunk input is (L - 50) / input_scale (50: [-1, 1]; 1: Caffe).")
    flip: bool = Field(True, description="Random horizontal flip of the training crop.")
    layer: str | None = Field(None, description="Trunk layer the head reads (None: the deepest).")
    head_channels: int = Field(256, ge=0, le=4096, description="Hidden 1×1 conv width of the head (0: one 1×1 conv).")
    cache_dir: str | None = Field(
        None, description="Cache for the gamut bins (None: $SSLREG_CACHE/colorization or ~/.cache/sslreg/colorization)."
    )
    priors_name: str | None = Field(
        None, description="Cache the colour priors under this name and reuse them without reading the data again."
    )
    prior_max_images: int = Field(2000, ge=1, description="Images read by prepare() for the colour priors.")
    prior_max_pixels: int = Field(16384, ge=64, description="Pixels per image (strided subsample) for the priors.")


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
        if config.image_size % config.target_stride:
            raise ValueError(
                f"colorization: image_size {config.image_size} must be a multiple of"
                f" target_stride {config.target_stride}"
            )
        self._bins: np.ndarray | None = None
        self._weights: np.ndarray | None = None
        self._device_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._warned_uniform = False

    # -- state that depends on the data and the gamut -------------------------------------------------------
    @property
    def bins(self) -> np.ndarray:
        """The in-gamut ab bin centres (Q, 2)."""
        if self._bins is None:
            self._bins = gamut_bins(self.config.cache_dir)
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

    def prepare(self, images: Iterable[np.ndarray], cache_dir: Path) -> None:
        """Fit the rebalancing weights from the training images' colour priors, cached under ``cache_dir``.

        Cache key: ``priors_name`` when set (then a cached file is used without reading ``images``), otherwise a
        hash of the subsampled images (at most ``prior_max_images``) and the bins.
        """
        bins, name = self.bins, self.config.priors_name
        counts = prior_lib.load_counts(prior_lib.priors_cache_path(Path(cache_dir), name), bins) if name else None
        if counts is None:
            sample = [  # subsampled one by one: full-size images are never all held at once
                prior_lib.subsample(np.asarray(image), self.config.prior_max_pixels)
                for image in itertools.islice(images, self.config.prior_max_images)
            ]
            if not sample:
                raise UserError("colorization.prepare: no training images were given for the colour priors")
            path = prior_lib.priors_cache_path(Path(cache_dir), name or prior_lib.fingerprint(sample, bins))
            counts = prior_lib.load_counts(path, bins)
            if counts is None:
                counts = prior_lib.bin_counts(sample, bins)
                prior_lib.save_counts(path, counts, bins, len(sample))
        smoothed = prior_lib.smooth_priors(counts, bins, self.config.sigma)
        self.set_priors(smoothed)

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
        """(L input (1, S, S) float32, ab target (2, S/stride, S/stride) float32) from a random square crop."""
        crop = random_crop(image, self.config.image_size, rng)
        if self.config.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        lab = rgb_to_lab(np.ascontiguousarray(crop))
        side = self.config.image_size // self.config.target_stride
        ab = (
            lab[..., 1:]
            if side == lab.shape[0]
            else cv2.resize(lab[..., 1:], (side, side), interpolation=cv2.INTER_AREA)
        )
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
                f"colorization: num_neighbors={self.config.num_neighbors} exceeds the Q={self.num_bins} in-gamut bins;"
                f" every pixel uses all {self.num_bins} bins",
                stacklevel=2,
            )
        bins = torch.as_tensor(self.bins, dtype=torch.float32)
        head = ColorizationHead(trunk.layer_channels[layer], bins, self.config.head_channels)
        return ColorizationModel(trunk, head, layer)

    def loss(self, model: ColorizationModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Rebalanced multinomial cross-entropy: mean over pixels of −w(nearest bin)·Σ_q z_q log softmax_q."""
        bins, weights = self._tensors(targets.device)
        logits = model(inputs, tuple(targets.shape[-2:]))
        log_p = torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1)  # (N, h, w, Q)
        index, soft = soft_encode_sparse(targets, bins, self.k, self.config.sigma)
        cross_entropy = -(soft * log_p.gather(3, index)).sum(dim=3)
        return (weights[index[..., 0]] * cross_entropy).mean()


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
