"""The ``jigsaw`` pretext task: solve 3x3 jigsaw puzzles over a Hamming-distance permutation set of size |P|."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from sslreg import Backbone, InputContract, PretextConfig, PretextTask, UserError
from sslreg_jigsaw import tiles as T
from sslreg_jigsaw.model import JigsawHead, JigsawModel
from sslreg_jigsaw.permutations import HammingStats, hamming_stats, load_permutations

log = logging.getLogger("sslreg.jigsaw")


class JigsawConfig(PretextConfig):
    """Options of the Jigsaw task. Defaults follow Goyal et al. 2019 (|P| = 2000, 255 px, 85 px cells, 64 px tiles)."""

    name: str = "jigsaw"
    num_permutations: int = Field(
        2000,
        ge=2,
        le=10000,
        description="|P|, the problem complexity: number of permutations (classes).",
    )
    method: Literal["max_avg", "max_min"] = Field(
        "max_avg",
        description="Greedy rule: next permutation has the largest mean / minimum Hamming distance.",
    )
    perm_seed: int = Field(
        0,
        ge=0,
        description="Seed that picks the first permutation (the set is deterministic).",
    )
    grid: int = Field(
        3,
        ge=2,
        le=3,
        description="Puzzle is grid x grid tiles (3 as in the paper: 9! permutations).",
    )
    image_size: int = Field(
        255,
        ge=8,
        le=4096,
        description="Short side resized (OpenCV) then a square random crop.",
    )
    cell: int = Field(
        85,
        ge=4,
        description="Side of one grid cell in pixels; grid * cell <= image_size.",
    )
    tile: int = Field(
        64,
        ge=4,
        description="Side of the random tile crop inside its cell; tile < cell leaves a gap.",
    )
    grayscale_prob: float = Field(0.3, ge=0.0, le=1.0, description="Per tile, probability of turning it gray.")
    color_jitter: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="Per tile brightness/contrast/saturation factors in [1-j, 1+j].",
    )
    channel_shift: int = Field(
        2,
        ge=0,
        le=8,
        description="Per tile, each colour channel cut up to this many px off (hides chromatic aberration).",
    )
    normalize: Literal["channel", "tile", "none"] = Field(
        "channel",
        description="Each tile to zero mean, unit std on its own: per channel, over the tile, or none ([0, 1]).",
    )
    tile_dim: int = Field(1024, ge=1, description="Per-tile fc width after global average pooling (fc6).")
    hidden_dim: int = Field(
        4096,
        ge=0,
        description="Width of the fc layer over the concatenated tiles (fc7); 0: straight to |P|.",
    )
    pool_size: int = Field(
        1,
        ge=1,
        le=8,
        description="Per-tile average pool to this side before fc6 (>1 keeps coarse layout).",
    )
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout before each fc layer of the classifier.")
    cache_dir: str | None = Field(
        None,
        description="Permutation cache folder (default $SSLREG_CACHE/jigsaw or ~/.cache/sslreg/jigsaw).",
    )

    @model_validator(mode="after")
    def _check_geometry(self) -> JigsawConfig:
        if self.tile > self.cell:
            raise ValueError(f"tile ({self.tile}) must be <= cell ({self.cell})")
        if self.grid * self.cell > self.image_size:
            raise ValueError(
                f"grid * cell ({self.grid} x {self.cell} = {self.grid * self.cell}) must be <= image_size"
                f" ({self.image_size})"
            )
        tiles = self.grid * self.grid
        if self.num_permutations > math.factorial(tiles):
            raise ValueError(
                f"num_permutations ({self.num_permutations}) must be <= {tiles}! = {math.factorial(tiles)}"
                f" for a {self.grid}x{self.grid} grid"
            )
        return self


class Jigsaw(PretextTask):
    """Jigsaw puzzles (Noroozi & Favaro 2016): classify which of |P| Hamming-distant permutations shuffled 9 tiles.

    ``make_sample`` returns tiles (9, 3, tile, tile) float32 in shuffled order and the permutation's index:
    ``tiles[i]`` is the tile cut from grid cell ``permutations[target][i]`` (row-major cells), so
    ``sslreg_jigsaw.tiles.unshuffle(tiles, permutations[target])`` restores the grid order.
    """

    name: ClassVar[str] = "jigsaw"
    Config: ClassVar[type[JigsawConfig]] = JigsawConfig
    complexity_field: ClassVar[str] = "num_permutations"
    consumes: ClassVar[str] = "unlabeled RGB images (H, W, 3) uint8"
    produces: ClassVar[str] = "tiles (9, 3, T, T) float + permutation index; Siamese trunk + fc head; cross-entropy"

    def __init__(self, config: JigsawConfig) -> None:
        super().__init__(config)
        self.config: JigsawConfig = config
        started = time.perf_counter()
        self.permutations, cached = load_permutations(
            config.num_permutations,
            seed=config.perm_seed,
            method=config.method,
            cache_dir=config.cache_dir,
            num_tiles=self.num_tiles,
        )
        self.stats: HammingStats = hamming_stats(self.permutations)
        log.info(
            "jigsaw: |P| = %d (%s, seed %d) %s in %.2f s: %s",
            config.num_permutations,
            config.method,
            config.perm_seed,
            "loaded from cache" if cached else "generated",
            time.perf_counter() - started,
            self.stats,
        )

    @property
    def num_tiles(self) -> int:
        """Tiles per puzzle (grid squared)."""
        return self.config.grid * self.config.grid

    def make_tiles(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Unshuffled, augmented, normalised tiles (num_tiles, 3, T, T) float32 of one RGB uint8 image, in
        row-major grid order."""
        c = self.config
        image = T.resize_and_crop(T.as_rgb(image), c.image_size, rng)
        tiles = T.to_float_chw(T.cut_tiles(image, c.grid, c.cell, c.tile, rng, channel_shift=c.channel_shift))
        tiles = T.augment_colour(tiles, rng, c.grayscale_prob, c.color_jitter)
        return T.normalise(tiles, c.normalize)

    def input_contract(self) -> InputContract:
        """Evaluators feed the trunk whole images normalised as tiles were: each image on its own to zero mean and
        unit std per channel (``normalize: channel``) or over all channels (``tile``), or RGB in [0, 1] (``none``)."""
        if self.config.normalize == "none":
            return InputContract(mean=(0.0,), std=(1.0,))
        return InputContract(normalize="per_channel" if self.config.normalize == "channel" else "per_image")

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(tiles (num_tiles, 3, T, T) float32 shuffled by a random permutation of the set, its index as long)."""
        tiles = self.make_tiles(image, rng)
        target = int(rng.integers(len(self.permutations)))
        shuffled = T.shuffle(tiles, self.permutations[target])
        return torch.from_numpy(shuffled), torch.tensor(target)

    def build_model(self, trunk: Backbone) -> JigsawModel:
        """Shared trunk on all tiles (its deepest layer), JigsawHead on top, sized from the trunk's channels."""
        in_channels = getattr(getattr(trunk, "config", None), "in_channels", 3)
        if in_channels != self.input_channels:
            raise UserError(f"jigsaw: the trunk must take {self.input_channels} input channels, not {in_channels}")
        head = JigsawHead(
            trunk.layer_channels[trunk.layer_names[-1]],
            num_tiles=self.num_tiles,
            num_classes=len(self.permutations),
            tile_dim=self.config.tile_dim,
            hidden_dim=self.config.hidden_dim,
            dropout=self.config.dropout,
            pool_size=self.config.pool_size,
        )
        return JigsawModel(trunk, head)

    def loss(self, model: JigsawModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the |P|-way permutation classifier."""
        return F.cross_entropy(model(inputs), targets)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The default permutation set's size and Hamming distances (loaded from, or written to, the cache)."""
        task = cls(cls.Config())
        return {
            "num_permutations": len(task.permutations),
            "method": task.config.method,
            "perm_seed": task.config.perm_seed,
            "hamming_min": task.stats.minimum,
            "hamming_mean": round(task.stats.mean, 4),
            "tile_shape": [task.num_tiles, 3, task.config.tile, task.config.tile],
        }
