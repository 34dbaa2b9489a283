"""rendered_normals: ray-cast demo scenes with exact normals, written once into the normals layout and read by nyuv2.

The scenes (render.py) are generated on first use into ``$SSLREG_CACHE/normals_demo/<key>`` (key: the generation
options and the renderer version), in a private folder renamed into place as a whole, so that concurrent runs and
interrupted generations never leave a half-written dataset. Later uses only read.
"""

from __future__ import annotations

import builtins
import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field
from sslreg_datasets import IndexedSource, SourceConfig

from sslreg import cache_dir
from sslreg_normals.layout import SPLITS, write_sample, write_split
from sslreg_normals.nyuv2 import NormalsFolder
from sslreg_normals.render import render_scene

#: Bump when render.py changes what a seed draws: the cache key changes with it.
RENDER_VERSION = 1


class RenderedNormalsConfig(SourceConfig):
    """Options of rendered_normals."""

    name: str = "rendered_normals"
    split: Literal["train", "test"] = Field("train", description="Which part: train and test scenes are disjoint.")
    num_train: int = Field(300, ge=1, le=100_000, description="Scenes in the train split.")
    num_test: int = Field(100, ge=1, le=100_000, description="Scenes in the test split.")
    size: int = Field(128, ge=16, le=1024, description="Side of the square renderings in pixels.")
    seed: int = Field(0, ge=0, description="Seed of the scenes; same seed, same scenes.")
    cache: str | None = Field(None, description="Folder to generate into (default: $SSLREG_CACHE/normals_demo).")


def dataset_key(config: RenderedNormalsConfig) -> str:
    """The folder name of one generated dataset: every option that changes its content."""
    return f"v{RENDER_VERSION}-seed{config.seed}-train{config.num_train}-test{config.num_test}-px{config.size}"


def generate(folder: Path, config: RenderedNormalsConfig) -> Path:
    """Render both splits into ``folder/<key>`` unless they are there already; return that path."""
    root = folder / dataset_key(config)
    if (root / "test.txt").is_file():
        return root
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".part", dir=folder))
    try:
        for split_index, (split, count) in enumerate(zip(SPLITS, (config.num_train, config.num_test))):
            ids = []
            for index in range(count):
                sample_id = f"{split}_{index:05d}"
                rgb, normals, valid = render_scene(
                    np.random.default_rng([config.seed, split_index, index]), config.size
                )
                write_sample(scratch, sample_id, rgb, normals, valid, atomic=False)
                ids.append(sample_id)
            write_split(scratch, split, ids, atomic=False)
        os.chmod(scratch, 0o755)
        try:
            os.rename(scratch, root)
        except OSError:
            if not (root / "test.txt").is_file():  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


class RenderedNormals(NormalsFolder):
    """Rendered rooms with boxes, spheres and cylinders textured with embedded photos: exact normals, no download."""

    name: ClassVar[str] = "rendered_normals"
    Config: ClassVar[type[SourceConfig]] = RenderedNormalsConfig
    config: RenderedNormalsConfig
    consumes: ClassVar[str] = "nothing: scenes are ray-cast on first use into the cache"
    produces: ClassVar[str] = "Sample(image RGB uint8, normals float32 (H, W, 3) zero where invalid, id)"

    @classmethod
    def check(cls, config: RenderedNormalsConfig) -> builtins.list[str]:  # type: ignore[override]
        """Nothing to check: the data is made here."""
        return []

    def __init__(self, config: RenderedNormalsConfig) -> None:  # type: ignore[override]
        IndexedSource.__init__(self, config)
        self._open(generate(cache_dir("normals_demo", config.cache), config), config.split)
