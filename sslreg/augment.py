"""Augmentations as torchvision.transforms.v2 pipelines named in YAML, applied per sample on the CPU side.

A task's config takes a list of steps, each a transform of ``torchvision.transforms.v2`` by name with its
options (nested ``transforms:`` lists for RandomApply, RandomChoice, RandomOrder)::

    augment:
      - {name: RandomResizedCrop, size: 64, scale: [0.2, 1.0]}
      - {name: RandomApply, p: 0.8, transforms: [{name: ColorJitter, brightness: 0.4, contrast: 0.4}]}
      - {name: RandomGrayscale, p: 0.2}
      - RandomHorizontalFlip

:class:`Augment` runs such a pipeline on an RGB uint8 image and returns an RGB uint8 image, so that the task's
input contract (normalisation) is applied after it exactly as evaluators apply it. v2 transforms draw from
torch's global generator; :class:`Augment` seeds a forked generator from the sample's ``rng``, so an augmented
sample is a function of (seed, epoch, index) whatever the number of workers, and training's RNG is untouched.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import AfterValidator

#: v2 transforms that are not image augmentations (conversions, normalisation, boxes, batches, video, code).
EXCLUDED = {
    "Lambda": "runs code; write the transform in the task",
    "Normalize": "normalisation is the task's input contract, applied after the augmentations",
    "ToDtype": "the pipeline works on uint8 images; the input contract converts them",
    "ConvertImageDtype": "the pipeline works on uint8 images; the input contract converts them",
    "ToImage": "images are converted for you",
    "ToPILImage": "images are converted for you",
    "ToPureTensor": "images are converted for you",
    "PILToTensor": "images are converted for you",
    "ToTensor": "images are converted for you",
    "Transform": "the abstract base class",
    "LinearTransformation": "not an augmentation of uint8 images",
    "GaussianNoise": "needs float images",
    "CutMix": "mixes a batch, not one image",
    "MixUp": "mixes a batch, not one image",
    "FiveCrop": "returns several images",
    "TenCrop": "returns several images",
    "UniformTemporalSubsample": "for videos",
}
#: Options that hold nested steps.
NESTED = "transforms"


def _transforms() -> dict[str, type]:
    from torchvision.transforms import v2

    return {
        name: value
        for name in dir(v2)
        if isinstance(value := getattr(v2, name), type)
        and issubclass(value, v2.Transform)
        and name not in EXCLUDED
        and "Bounding" not in name
        and "KeyPoints" not in name
        and name not in ("RandomIoUCrop", "SetClampingMode")
    }


def _as_step(step: Any, where: str) -> dict[str, Any]:
    if isinstance(step, str):
        return {"name": step}
    if not isinstance(step, Mapping) or not isinstance(step.get("name"), str):
        raise ValueError(f"{where}: expected a transform name or a mapping with 'name', got {step!r}")
    return dict(step)


def build_transform(step: Any, where: str = "augment") -> Any:
    """One v2 transform from ``{name: ..., option: value}`` (or a bare name); a ValueError names what is wrong."""
    from torchvision.transforms import v2

    options = _as_step(step, where)
    name = options.pop("name")
    known = _transforms()
    if name not in known:
        if name in EXCLUDED:
            raise ValueError(f"{where}: {name} is not allowed here ({EXCLUDED[name]})")
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: {name!r} is not a torchvision.transforms.v2 image transform{hint}")
    if NESTED in options:
        nested = options[NESTED]
        if not isinstance(nested, Sequence) or isinstance(nested, str):
            raise ValueError(f"{where} {name}: '{NESTED}' must be a list of steps")
        options[NESTED] = [build_transform(item, f"{where}.{NESTED}[{i}]") for i, item in enumerate(nested)]
    if isinstance(options.get("interpolation"), str):
        try:
            options["interpolation"] = v2.InterpolationMode(options["interpolation"].lower())
        except ValueError:
            modes = ", ".join(mode.value for mode in v2.InterpolationMode)
            raise ValueError(f"{where} {name}: interpolation must be one of {modes}") from None
    try:
        return known[name](**options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where} {name}: {error}") from None


def build_pipeline(steps: Sequence[Any]) -> Any:
    """A v2.Compose of ``steps`` (see :func:`build_transform`)."""
    from torchvision.transforms import v2

    return v2.Compose([build_transform(step, f"augment[{i}]") for i, step in enumerate(steps)])


@dataclass(frozen=True)
class Augment:
    """A picklable pipeline ``(RGB uint8 image, rng) -> RGB uint8 image``; all randomness from ``rng``."""

    steps: tuple[Any, ...]
    _pipeline: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pipeline", build_pipeline(self.steps))

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The augmented image (H', W', 3) uint8."""
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as TF

        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        tensor = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1))
        seed = int(rng.integers(0, 2**63 - 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = self._pipeline(tensor)
        if out.is_floating_point():
            out = TF.to_dtype(out, torch.uint8, scale=True)
        return np.ascontiguousarray(out.permute(1, 2, 0).numpy())


def _check_steps(steps: list[Any]) -> list[Any]:
    """Config validation: every step builds, and the pipeline runs on a small image."""
    probe = Augment(tuple(steps))
    try:
        probe(np.zeros((64, 64, 3), dtype=np.uint8), np.random.default_rng(0))
    except Exception as error:  # noqa: BLE001 - any failure of the pipeline is the config's to fix
        raise ValueError(f"the pipeline fails on a 64x64 RGB uint8 image: {error}") from None
    return steps


#: A config field type: a list of augmentation steps, validated (names, options, a trial run) with the config.
AugmentSteps = Annotated[list[Any], AfterValidator(_check_steps)]

__all__ = ["Augment", "AugmentSteps", "build_pipeline", "build_transform"]
