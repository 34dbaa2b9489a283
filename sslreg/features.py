"""Frozen-trunk feature extraction shared by every evaluator: one forward pass, protocol pooling, a disk cache.

Images are resized whole (no crop) to a square ``image_size`` and normalised:

* RGB trunks (``in_channels == 3``): ``(rgb / 255 - IMAGENET_MEAN) / IMAGENET_STD``.
* L-only colorization trunks (``in_channels == 1``): the L channel of OpenCV's float Lab conversion
  (``L`` in [0, 100]) as ``(L - 50) / lightness_scale``; the default 50 gives [-1, 1], as sslreg-colorization
  feeds its trunks by default.

Every requested layer comes from ONE forward pass and is pooled with :func:`sslreg.pooling.pool_features`.
Pooled features are stored per layer as ``cache_dir/cache_key/<layer>.npy`` (float32), the targets as
``targets.npy``, and read back memory-mapped, so several costs, shots, draws and runs reuse one extraction.
Every file is written to a temporary name and moved into place with ``os.replace`` (never half-written).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import torch

from sslreg.backbone import Backbone
from sslreg.dataset import DatasetSource, Sample
from sslreg.files import atomic_open, publish
from sslreg.pooling import pool_features

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
#: Bumped whenever preprocessing or the on-disk layout changes, so old caches are never reused by mistake.
CACHE_FORMAT = 1
_META = "meta.json"
_TARGETS = "targets.npy"


@dataclass
class FeatureSet:
    """Pooled features per layer (``(N, D)`` float32, memory-mapped when cached) and the ``N`` targets."""

    features: dict[str, np.ndarray]
    targets: np.ndarray | None
    class_names: list[str] = field(default_factory=list)
    skipped: int = 0
    path: Path | None = None
    extracted: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(next(iter(self.features.values()))) if self.features else 0


@dataclass(frozen=True)
class Preprocess:
    """How an image enters the trunk: resized whole to ``size`` x ``size``, then normalised for ``in_channels``.

    ``lightness_scale`` must match the scale the L-only trunk was trained with (sslreg-colorization's
    ``input_scale``; 50 gives [-1, 1], 1 is the Caffe reference's plain ``L - 50``).
    """

    size: int
    in_channels: int = 3
    lightness_scale: float = 50.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """One RGB uint8 image (H, W, 3) to a normalised float32 (in_channels, size, size) array."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        resized = cv2.resize(image[..., :3], (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        rgb = resized.astype(np.float32) / 255.0
        if self.in_channels == 3:
            return ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
        if self.in_channels == 1:
            lightness = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[..., 0]
            return ((lightness - 50.0) / self.lightness_scale)[None]
        raise ValueError(f"feature extraction: in_channels={self.in_channels} is not supported (1 = L of Lab, 3 = RGB)")


def feature_cache_key(backbone: Backbone, dataset: DatasetSource, prepare: Preprocess) -> str:
    """A short hash naming one extraction: trunk class, config and weights, dataset config, image size/scaling."""
    digest = hashlib.sha256()
    head = {
        "format": CACHE_FORMAT,
        "backbone": f"{type(backbone).__module__}.{type(backbone).__qualname__}",
        "backbone_config": backbone.config.model_dump(mode="json"),
        "dataset": f"{type(dataset).__module__}.{type(dataset).__qualname__}",
        "dataset_config": dataset.config.model_dump(mode="json"),
        "preprocess": asdict(prepare),
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    for name, tensor in backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return f"{backbone.name}-{dataset.name}-{prepare.size}px-{digest.hexdigest()[:16]}"


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write`` into a temp file next to ``path``, then publish it: readers never see a half-written file."""
    with atomic_open(path, "wb") as stream:
        write(stream)


#: A batch ready for the trunk: images (B, in_channels, S, S) or None, their targets, and unreadable images skipped.
Batch = tuple["np.ndarray | None", list, int]


def _collate(items: list[tuple[np.ndarray, object] | None]) -> Batch:
    kept = [item for item in items if item is not None]
    images = np.stack([image for image, _ in kept]) if kept else None
    return images, [target for _, target in kept], len(items) - len(kept)


class _Prepared(torch.utils.data.Dataset):
    """An indexable source as (preprocessed image, target) items, None where unreadable (for DataLoader workers)."""

    def __init__(self, dataset: DatasetSource, preprocess: Preprocess) -> None:
        self.dataset, self.preprocess = dataset, preprocess

    def __len__(self) -> int:
        return len(self.dataset)

    def prepare(self, sample: Sample | None) -> tuple[np.ndarray, object] | None:
        return None if sample is None else (self.preprocess(sample.image), sample.target)

    def __getitem__(self, index: int) -> tuple[np.ndarray, object] | None:
        return self.prepare(self.dataset.load(index))


def _prepared_batches(
    dataset: DatasetSource, preprocess: Preprocess, batch_size: int, num_workers: int
) -> Iterator[Batch]:
    """Decoded, resized, normalised batches in dataset order; ``num_workers`` processes for indexable sources."""
    prepared = _Prepared(dataset, preprocess)
    if num_workers > 0 and not dataset.is_stream:
        loader = torch.utils.data.DataLoader(
            prepared, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate
        )
        yield from loader
        return
    items = (prepared.prepare(sample) for sample in dataset.stream())
    while chunk := list(islice(items, batch_size)):
        yield _collate(chunk)


def _stack_targets(targets: list[object]) -> np.ndarray | None:
    if not targets or all(target is None for target in targets):
        return None
    if any(target is None for target in targets):
        raise ValueError("feature extraction: some samples have a target and some do not")
    return np.asarray(targets)


Allocate = Callable[[str, int, int], np.ndarray]


def _in_memory(layer: str, rows: int, dim: int) -> np.ndarray:
    return np.empty((rows, dim), np.float32)


@dataclass
class _Pass:
    """One forward pass of a frozen trunk over a dataset: which layers, what input, where, how batched."""

    backbone: Backbone
    dataset: DatasetSource
    layers: list[str]
    preprocess: Preprocess
    device: torch.device
    batch_size: int
    num_workers: int

    def run(self, allocate: Allocate = _in_memory) -> tuple[dict[str, np.ndarray], np.ndarray | None, int]:
        """Pooled features of every layer, the targets, and how many images were skipped as unreadable.

        Rows go straight into arrays from ``allocate(layer, len(dataset), dim)`` (memory or a memory-mapped
        file); the returned arrays are cut to the readable images.
        """
        backbone, dataset, layers = self.backbone, self.dataset, self.layers
        at_protocol_size = self.preprocess.size == backbone.input_size
        capacity = len(dataset)
        batches = _prepared_batches(dataset, self.preprocess, self.batch_size, self.num_workers)
        out: dict[str, np.ndarray] = {}
        targets: list[object] = []
        skipped = 0
        backbone.to(self.device).eval()
        with torch.inference_mode():
            for images, batch_targets, missed in batches:
                skipped += missed
                if images is None:
                    continue
                start, stop = len(targets), len(targets) + len(images)
                if stop > capacity:
                    raise ValueError(f"dataset {dataset.name!r} yielded more than its len() = {capacity} images")
                output = backbone(torch.from_numpy(images).to(self.device), layers)
                pooled = pool_features({name: output[name] for name in layers}, backbone.pool_specs, at_protocol_size)
                for layer in layers:
                    rows = pooled[layer].float().cpu().numpy()
                    if layer not in out:
                        out[layer] = allocate(layer, capacity, rows.shape[1])
                    out[layer][start:stop] = rows
                targets.extend(batch_targets)
        if not targets:
            raise ValueError(f"dataset {dataset.name!r}: no readable image to extract features from")
        features = {layer: array[: len(targets)] for layer, array in out.items()}
        return features, _stack_targets(targets), skipped

    def to_disk(self, folder: Path, meta: dict | None) -> dict:
        """Run writing straight into memory-mapped temp files, then move each into place; returns the meta."""
        temps: dict[str, Path] = {}
        maps: dict[str, np.memmap] = {}

        def allocate(layer: str, rows: int, dim: int) -> np.ndarray:
            handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{layer}.npy.", suffix=".tmp")
            os.close(handle)
            temps[layer] = Path(temp)
            maps[layer] = np.lib.format.open_memmap(temp, mode="w+", dtype=np.float32, shape=(rows, dim))
            return maps[layer]

        try:
            features, targets, skipped = self.run(allocate)
            count = len(next(iter(features.values())))
            if meta is not None and meta["count"] != count:
                raise ValueError(f"feature cache {folder}: {meta['count']} images cached, {count} read now; delete it")
            for layer, array in features.items():
                if count == len(maps[layer]):  # every image was readable: the temp file is the result
                    maps[layer].flush()
                    publish(temps[layer], folder / f"{layer}.npy")
                else:  # unreadable images were skipped: write the filled rows only
                    _write_atomic(folder / f"{layer}.npy", partial(np.save, arr=array))
            if meta is None:
                if targets is not None:
                    _write_atomic(folder / _TARGETS, partial(np.save, arr=targets))
                meta = {
                    "format": CACHE_FORMAT,
                    "count": count,
                    "skipped": skipped,
                    "class_names": list(self.dataset.class_names),
                    "has_targets": targets is not None,
                    "preprocess": asdict(self.preprocess),
                }
                _write_atomic(folder / _META, lambda stream: stream.write(json.dumps(meta, indent=1).encode()))
            return meta
        finally:
            for temp in temps.values():
                temp.unlink(missing_ok=True)


def extract_features(
    backbone: Backbone,
    dataset: DatasetSource,
    layers: Sequence[str] | str | None,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    image_size: int | None = None,
    lightness_scale: float = 50.0,
    num_workers: int = 0,
    cache_dir: Path | str | None = None,
    cache_key: str | None = None,
) -> FeatureSet:
    """Pooled features of ``layers`` for every readable image of ``dataset``, from one pass of the frozen trunk.

    ``image_size`` defaults to the trunk's protocol size; ``lightness_scale``: see :class:`Preprocess`.
    ``num_workers`` processes decode and resize images of an indexable source (rows stay in dataset order).
    With ``cache_dir`` the layers already on disk under ``cache_dir/cache_key`` are reused (memory-mapped) and
    only the missing ones are computed, in one pass. ``cache_key`` defaults to :func:`feature_cache_key`.
    """
    if batch_size < 1 or num_workers < 0:
        raise ValueError(f"feature extraction: batch_size {batch_size} must be >= 1, num_workers {num_workers} >= 0")
    prepare = Preprocess(int(image_size or backbone.input_size), backbone.config.in_channels, float(lightness_scale))
    names = backbone.resolve_layers(layers)
    extraction = _Pass(backbone, dataset, names, prepare, torch.device(device), batch_size, num_workers)
    if cache_dir is None:
        features, targets, skipped = extraction.run()
        return FeatureSet(features, targets, list(dataset.class_names), skipped, None, names)

    folder = Path(cache_dir) / (cache_key or feature_cache_key(backbone, dataset, prepare))
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / _META
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    missing = [layer for layer in names if meta is None or not (folder / f"{layer}.npy").exists()]
    if missing:
        meta = replace(extraction, layers=missing).to_disk(folder, meta)
    loaded = {layer: np.load(folder / f"{layer}.npy", mmap_mode="r") for layer in names}
    targets = np.load(folder / _TARGETS, mmap_mode="r") if meta["has_targets"] else None
    return FeatureSet(loaded, targets, list(meta["class_names"]), int(meta["skipped"]), folder, missing)
