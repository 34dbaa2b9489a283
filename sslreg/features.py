"""Frozen-trunk feature extraction shared by every evaluator: one forward pass, protocol pooling, a disk cache.

Images are resized whole (no crop) to a square ``image_size`` and fed as the trunk's input contract says
(``trunk.input_contract``: what its pretext task trained it on, recorded with its weights; :mod:`sslreg.inputs`).
Batches come from the core's data adapter (:func:`sslreg.data.make_loader`), in dataset order.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from sslreg.backbone import Backbone
from sslreg.data import Collate, make_loader
from sslreg.dataset import DatasetSource, Sample
from sslreg.errors import NoReadableImages, UserError
from sslreg.files import atomic_open, publish
from sslreg.inputs import Preprocess
from sslreg.pooling import pool_features

#: Bumped whenever preprocessing or the on-disk layout changes, so old caches are never reused by mistake.
CACHE_FORMAT = 2
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


def _describe(prepare: Preprocess) -> dict:
    """The preprocessing as plain JSON (part of the cache key and of the cache's meta)."""
    return {"size": prepare.size, "contract": prepare.contract.model_dump(mode="json")}


def feature_cache_key(backbone: Backbone, dataset: DatasetSource, prepare: Preprocess) -> str:
    """A short hash naming one extraction: trunk class, config and weights, dataset config, image size/scaling."""
    digest = hashlib.sha256()
    head = {
        "format": CACHE_FORMAT,
        "backbone": f"{type(backbone).__module__}.{type(backbone).__qualname__}",
        "backbone_config": backbone.config.model_dump(mode="json"),
        "dataset": f"{type(dataset).__module__}.{type(dataset).__qualname__}",
        "dataset_config": dataset.config.model_dump(mode="json"),
        "preprocess": _describe(prepare),
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


@dataclass(frozen=True)
class _Prepared:
    """Per-sample transform of the adapter: (preprocessed image, target) (picklable: runs in workers)."""

    preprocess: Preprocess

    def __call__(self, sample: Sample, rng: np.random.Generator) -> tuple[np.ndarray, object]:
        return self.preprocess(sample.image), sample.target


def _stack_images(items: list[tuple[np.ndarray, object]]) -> tuple[np.ndarray, list]:
    """Images stacked (B, channels, S, S); targets kept as a list (stacked once, at the end)."""
    return np.stack([image for image, _ in items]), [target for _, target in items]


def _stack_targets(targets: list[object]) -> np.ndarray | None:
    if not targets or all(target is None for target in targets):
        return None
    if any(target is None for target in targets):
        raise UserError("feature extraction: some samples have a target and some do not")
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
        loader = make_loader(
            dataset,
            _Prepared(self.preprocess),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate=Collate(_stack_images),
            rank=0,
            world_size=1,
        )
        out: dict[str, np.ndarray] = {}
        targets: list[object] = []
        skipped = 0
        backbone.to(self.device).eval()
        with torch.inference_mode():
            for batch in loader:
                skipped += batch.bad
                if batch.data is None:
                    continue
                images, batch_targets = batch.data
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
            raise NoReadableImages(f"dataset {dataset.name!r}: no readable image to extract features from")
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
                raise UserError(f"feature cache {folder}: {meta['count']} images cached, {count} read now; delete it")
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
                    "preprocess": _describe(self.preprocess),
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
    num_workers: int = 0,
    cache_dir: Path | str | None = None,
    cache_key: str | None = None,
) -> FeatureSet:
    """Pooled features of ``layers`` for every readable image of ``dataset``, from one pass of the frozen trunk.

    ``image_size`` defaults to the trunk's protocol size; images are fed as ``backbone.input_contract`` says.
    ``num_workers`` processes decode and resize images of an indexable source (rows stay in dataset order).
    With ``cache_dir`` the layers already on disk under ``cache_dir/cache_key`` are reused (memory-mapped) and
    only the missing ones are computed, in one pass. ``cache_key`` defaults to :func:`feature_cache_key`.
    """
    if batch_size < 1 or num_workers < 0:
        raise UserError(f"feature extraction: batch_size {batch_size} must be >= 1, num_workers {num_workers} >= 0")
    prepare = Preprocess(int(image_size or backbone.input_size), backbone.input_contract)
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
