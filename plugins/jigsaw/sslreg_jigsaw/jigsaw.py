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
from torch import nn

from sslreg import Backbone, InputContract, PretextConfig, PretextTask, UserError
from sslreg_jigsaw import tiles as T
from sslreg_jigsaw.model import JigsawHead, JigsawModel
from sslreg_jigsaw.permutations import HammingStats, hamming_stats, load_permutations, read_permutation_file

#: The options that ``head: reference`` sets from the trunk (so giving another value for one of them is a mistake).
HEAD_OPTIONS = ("tile_dim", "hidden_dim", "pool_size", "dropout")

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
    perm_file: str | None = Field(
        None,
        description="A published permutation set (.npy, |P| x 9, 1-indexed files are shifted to 0-indexed) instead"
        " of generating one; '{num_permutations}' in the path is replaced by |P|.",
    )
    grid: int = Field(
        3,
        ge=2,
        le=3,
        description="Puzzle is grid x grid tiles (3 as in the paper: 9! permutations).",
    )
    resize: int | None = Field(
        None,
        ge=8,
        le=4096,
        description="Short side resized to this, then a random image_size crop (the reference: 256, then 255);"
        " None: a random square of the short side, resized to image_size.",
    )
    image_size: int = Field(
        255,
        ge=8,
        le=4096,
        description="Side of the square image the grid is cut from.",
    )
    flip: bool = Field(False, description="Random horizontal flip of the whole image (the reference: true).")
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
    grayscale_prob: float = Field(0.3, ge=0.0, le=1.0, description="Probability of turning a tile (or the image) gray.")
    grayscale_scope: Literal["tile", "image"] = Field(
        "tile",
        description="grayscale_prob per tile, or per image (the reference: the whole image with p = 0.66).",
    )
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
    normalize: Literal["channel", "tile", "none", "imagenet"] = Field(
        "channel",
        description="Each tile to zero mean, unit std on its own (per channel, or over the tile), none ([0, 1]),"
        " or 'imagenet': the whole image with the ImageNet mean/std before cutting tiles (the reference).",
    )
    head: Literal["sslreg", "reference"] = Field(
        "sslreg",
        description="'sslreg': the head of the options below; 'reference': the paper's for the trunk (AlexNet-type:"
        " pool5 -> fc6 1024 -> fc7 4096 -> |P|; others: 1000 + BN per tile -> |P|), ignoring them.",
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
        if self.resize is not None and self.resize < self.image_size:
            raise ValueError(f"resize ({self.resize}) must be >= image_size ({self.image_size}), or null")
        if self.head == "reference":
            fields = type(self).model_fields
            given = [o for o in HEAD_OPTIONS if o in self.model_fields_set and getattr(self, o) != fields[o].default]
            if given:
                raise ValueError(f"head: 'reference' sets {', '.join(given)} from the trunk; drop them or use 'sslreg'")
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
        if config.perm_file:
            path = config.perm_file.replace("{num_permutations}", str(config.num_permutations))
            self.permutations = read_permutation_file(path, self.num_tiles)
            if len(self.permutations) != config.num_permutations:
                raise UserError(
                    f"perm_file: {path!r} holds {len(self.permutations)} permutations, but num_permutations is"
                    f" {config.num_permutations}"
                )
            source = f"read from {path}"
        else:
            self.permutations, cached = load_permutations(
                config.num_permutations,
                seed=config.perm_seed,
                method=config.method,
                cache_dir=config.cache_dir,
                num_tiles=self.num_tiles,
            )
            source = f"({config.method}, seed {config.perm_seed}) " + ("loaded from cache" if cached else "generated")
        self.stats: HammingStats = hamming_stats(self.permutations)
        log.info(
            "jigsaw: |P| = %d %s in %.2f s: %s",
            config.num_permutations,
            source,
            time.perf_counter() - started,
            self.stats,
        )

    @property
    def num_tiles(self) -> int:
        """Tiles per puzzle (grid squared)."""
        return self.config.grid * self.config.grid

    def make_tiles(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Unshuffled, augmented, normalised tiles (num_tiles, 3, T, T) float32 of one RGB uint8 image, in
        row-major grid order.

        Steps and random draws, in order: the square image (``resize`` then a random crop: top, left; or a random
        square of the short side resized); ``flip`` (one draw); with ``grayscale_scope: image`` and p > 0, one
        draw for the whole image; the tile offsets; then per tile channel shifts, colour jitter and grayscale.
        """
        c = self.config
        image = T.as_rgb(image)
        if c.resize is not None:
            image = T.random_crop(T.resize_short_side(image, c.resize), c.image_size, rng)
        else:
            image = T.resize_and_crop(image, c.image_size, rng)
        if c.flip and rng.random() < 0.5:
            image = image[:, ::-1]
        whole_gray = c.grayscale_scope == "image" and c.grayscale_prob > 0 and rng.random() < c.grayscale_prob
        tiles = T.to_float_chw(T.cut_tiles(image, c.grid, c.cell, c.tile, rng, channel_shift=c.channel_shift))
        per_tile_gray = c.grayscale_prob if c.grayscale_scope == "tile" else 0.0
        tiles = T.augment_colour(tiles, rng, per_tile_gray, c.color_jitter)
        if whole_gray:
            tiles = T.to_gray(tiles)
        return T.normalise(tiles, c.normalize)

    def input_contract(self) -> InputContract:
        """Evaluators feed the trunk whole images normalised as tiles were: with the ImageNet mean/std
        (``normalize: imagenet``), each image on its own to zero mean and unit std per channel (``channel``) or
        over all channels (``tile``), or RGB in [0, 1] (``none``)."""
        if self.config.normalize == "imagenet":
            return InputContract()
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
        layer = trunk.layer_names[-1]
        channels = trunk.layer_channels[layer]
        c = self.config
        sizes = {"num_tiles": self.num_tiles, "num_classes": len(self.permutations)}
        if c.head == "sslreg":
            head = JigsawHead(
                channels,
                **sizes,
                tile_dim=c.tile_dim,
                hidden_dim=c.hidden_dim,
                dropout=c.dropout,
                pool_size=c.pool_size,
            )
        elif layer == "conv5":  # an AlexNet: Noroozi & Favaro's CFN head on pool5 of each tile
            head = JigsawHead(
                channels,
                **sizes,
                tile_dim=1024,
                hidden_dim=4096,
                dropout=0.5,
                pool_size=self._pool5_side(trunk, layer),
                pool="max",
            )
        else:  # VISSL's ResNet head: per tile 2048 -> 1000 + BN + ReLU, the 9 concatenated -> |P|
            head = JigsawHead(channels, **sizes, tile_dim=1000, hidden_dim=0, dropout=0.0, tile_bn=True)
        return JigsawModel(trunk, head)

    def _pool5_side(self, trunk: Backbone, layer: str) -> int:
        """Side of ``layer`` after AlexNet's pool5 (max 3/2, ceil mode) for one tile: one dry run in eval mode."""
        was_training = trunk.training
        parameter = next(trunk.parameters(), None)
        tile = torch.zeros(1, self.input_channels, self.config.tile, self.config.tile)
        if parameter is not None:
            tile = tile.to(device=parameter.device, dtype=parameter.dtype)
        try:
            trunk.eval()
            with torch.no_grad():
                pooled = nn.MaxPool2d(3, 2, ceil_mode=True)(trunk(tile, [layer])[layer])
        finally:
            trunk.train(was_training)
        if pooled.shape[-1] != pooled.shape[-2]:
            raise UserError(f"jigsaw: head 'reference' needs square tiles, got a {tuple(pooled.shape[-2:])} pool5")
        return int(pooled.shape[-1])

    def loss(self, model: JigsawModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the |P|-way permutation classifier."""
        return F.cross_entropy(model(inputs), targets)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The default permutation set's size and Hamming distances (loaded from, or written to, the cache)."""
        task = cls(cls.Config())
        return {
            "num_permutations": len(task.permutations),
            "perm_file": task.config.perm_file,
            "method": task.config.method,
            "perm_seed": task.config.perm_seed,
            "hamming_min": task.stats.minimum,
            "hamming_mean": round(task.stats.mean, 4),
            "tile_shape": [task.num_tiles, 3, task.config.tile, task.config.tile],
        }
