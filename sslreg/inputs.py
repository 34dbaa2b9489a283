"""The input contract: how an RGB image becomes a trunk's input, declared by the pretext task that trained it.

A pretext task declares its contract (:meth:`sslreg.PretextTask.input_contract`); pretraining stores it with the
weights (``trunk.pth`` and checkpoints), and :func:`sslreg.build_trunk` attaches it to the trunk as
``trunk.input_contract``, so every evaluator feeds a trunk exactly what it was trained on with no option to sync
by hand. A trunk's ``input`` option overrides it (external weights trained on other inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Below this standard deviation (in the space's units) a per-image normalisation divides by 1 instead.
FLAT_STD = 1e-5


class InputContract(BaseModel):
    """What a trunk expects: a colour space, then a normalisation, applied to an image already at its size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: Literal["rgb", "lab_l"] = Field(
        "rgb", description="'rgb': R, G, B in [0, 1] (3 channels); 'lab_l': L of Lab in [0, 100] (1 channel)."
    )
    normalize: Literal["mean_std", "per_image", "per_channel"] = Field(
        "mean_std",
        description="'mean_std': (x - mean) / std; 'per_image': each image to zero mean and unit std;"
        " 'per_channel': each channel of each image so (Jigsaw's per-tile normalisation).",
    )
    mean: tuple[float, ...] = Field(
        IMAGENET_MEAN, description="Per-channel mean subtracted in 'mean_std' mode (default: ImageNet's; L: 50)."
    )
    std: tuple[float, ...] = Field(
        IMAGENET_STD, description="Per-channel std divided by in 'mean_std' mode (default: ImageNet's; L: 50)."
    )

    @model_validator(mode="before")
    @classmethod
    def _lightness_defaults(cls, data: object) -> object:
        """For the L of Lab the defaults are mean 50, std 50 ([-1, 1]), not ImageNet's RGB statistics."""
        if isinstance(data, dict) and data.get("space") == "lab_l":
            data = {"mean": (50.0,), "std": (50.0,), **data}
        return data

    @model_validator(mode="after")
    def _check_lengths(self) -> InputContract:
        if self.normalize == "mean_std":
            for option, values in (("mean", self.mean), ("std", self.std)):
                if len(values) not in (1, self.channels):
                    raise ValueError(f"{option}: {len(values)} values for {self.channels} channel(s) of {self.space}")
            if any(value <= 0 for value in self.std):
                raise ValueError(f"std: must be > 0, got {self.std}")
        return self

    @property
    def channels(self) -> int:
        """Input channels of the trunk: 3 for RGB, 1 for the L of Lab."""
        return 1 if self.space == "lab_l" else 3

    def convert(self, image: np.ndarray) -> np.ndarray:
        """An RGB uint8 image (H, W, 3) to float32 (channels, H, W) in the contract's space, not yet normalised."""
        import cv2  # imported here: keeps `import sslreg` (and `sslreg list`) light

        rgb = np.ascontiguousarray(image[..., :3], dtype=np.float32) / np.float32(255.0)
        if self.space == "lab_l":
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[None, ..., 0]
        return np.ascontiguousarray(rgb.transpose(2, 0, 1))

    def normalise(self, planes: np.ndarray) -> np.ndarray:
        """Normalise (channels, H, W) values of the contract's space."""
        if self.normalize == "mean_std":
            mean = np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1)
            std = np.asarray(self.std, dtype=np.float32).reshape(-1, 1, 1)
            return ((planes - mean) / std).astype(np.float32, copy=False)
        flat = planes.reshape(len(planes), -1) if self.normalize == "per_channel" else planes.reshape(1, -1)
        mean = flat.mean(axis=1, dtype=np.float64)
        std = flat.std(axis=1, dtype=np.float64)
        std[std < FLAT_STD] = 1.0
        scale = (1.0 / std).astype(np.float32)[:, None]
        shift = (mean / std).astype(np.float32)[:, None]
        return (flat * scale - shift).reshape(planes.shape)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) (or gray (H, W)) to the trunk's float32 input (channels, H, W)."""
        import cv2

        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        return self.normalise(self.convert(image))


@dataclass(frozen=True)
class Preprocess:
    """Evaluation input: the image resized whole (no crop) to ``size`` x ``size``, then the trunk's contract."""

    size: int
    contract: InputContract = field(default_factory=InputContract)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """One RGB uint8 image (H, W, 3) to a float32 (channels, size, size) array."""
        import cv2

        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        resized = cv2.resize(image[..., :3], (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        return self.contract(resized)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "InputContract", "Preprocess"]
