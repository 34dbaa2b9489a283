"""``sslreg colorize``: colourise grayscale versions of images with a pretrained colorization checkpoint.

Writes a PNG grid, one row per image: grayscale input | prediction (annealed mean, T = 0.38) | ground truth.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sslreg import UserError, build_trunk, get_registry, read_weights
from sslreg_colorization.colorization import Colorization
from sslreg_colorization.encoding import annealed_mean
from sslreg_colorization.lab import l_to_input, lab_to_rgb_uint8, rgb_to_lab
from sslreg_colorization.model import ColorizationModel


def load_colorizer(checkpoint: str | Path, device: str = "cpu") -> tuple[Colorization, ColorizationModel]:
    """Task and model (eval mode) from an sslreg pretraining checkpoint (weights_only loading)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"colorize: checkpoint {str(path)!r} does not exist")
    try:
        state = read_weights(path)
    except UserError:
        raise UserError(f"colorize: {str(path)!r} could not be loaded with torch.load(weights_only=True)") from None
    try:
        pretrain = state["meta"]["config"]["pretrain"]
        backbone_options, pretext_options = dict(pretrain["backbone"]), dict(pretrain["pretext"])
        weights = state["state_dict"]
    except (KeyError, TypeError) as error:
        raise UserError(f"colorize: {str(path)!r} is not an sslreg pretraining checkpoint (missing {error})") from None
    registry = get_registry()
    trained_with = registry.find(str(pretext_options.get("name")))
    if not any(entry.cls is Colorization for entry in trained_with):
        raise UserError(
            f"colorize: {str(path)!r} was trained with pretext {pretext_options.get('name')!r}, not colorization"
        )
    head_bins = weights.get("head.ab_bins") if isinstance(weights, dict) else None
    if "bins" not in pretext_options:  # written before the option existed, when the 262 sRGB bins were the only set
        pretext_options["bins"] = "zhang313" if head_bins is not None and len(head_bins) == 313 else "srgb262"
    task = registry.build("pretext", pretext_options)
    if head_bins is not None and tuple(head_bins.shape) != (task.num_bins, 2):
        raise UserError(
            f"colorize: {str(path)!r} has a head over {head_bins.shape[0]} ab bins, but its config says"
            f" bins: {task.config.bins} (Q = {task.num_bins})"
        )
    trunk = build_trunk(registry, backbone_options, seed=0, contract=task.input_contract())
    model = task.build_model(trunk)
    model.load_state_dict(weights)
    return task, model.to(device).eval()


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 image from a file, or FileNotFoundError/ValueError naming the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"colorize: image {str(path)!r} does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError(f"colorize: image {str(path)!r} could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size``, then cut the central ``size``×``size`` square."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top : top + size, left : left + size]


@torch.no_grad()
def colorize_row(
    task: Colorization, model: ColorizationModel, image: np.ndarray, size: int, temperature: float = 0.38
) -> np.ndarray:
    """One grid row (size, 3·size, 3) uint8: grayscale | prediction | ground truth, for an RGB uint8 image."""
    square = center_square(image, size)
    lab = rgb_to_lab(square)
    device = next(model.parameters()).device
    inputs = torch.from_numpy(l_to_input(lab[..., 0], task.config.input_scale))[None, None].to(device)
    side = max(1, size // task.config.target_stride)
    ab = annealed_mean(model(inputs, (side, side)), model.head.ab_bins, temperature)
    ab = F.interpolate(ab, size=(size, size), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    predicted = np.concatenate([lab[..., :1], ab.cpu().numpy()], axis=2)
    gray = np.concatenate([lab[..., :1], np.zeros_like(lab[..., 1:])], axis=2)
    return np.concatenate([lab_to_rgb_uint8(gray), lab_to_rgb_uint8(predicted), square], axis=1)


def colorize_grid(
    checkpoint: str | Path,
    images: Sequence[str | Path | np.ndarray],
    size: int | None = None,
    temperature: float = 0.38,
) -> np.ndarray:
    """The RGB uint8 grid (rows·size, 3·size, 3) for image files or RGB arrays."""
    if size is not None and size < 8:
        raise UserError(f"colorize: --size must be ≥ 8, got {size}")
    arrays = [read_image(item) if not isinstance(item, np.ndarray) else item for item in images]
    task, model = load_colorizer(checkpoint)
    size = size or task.config.image_size
    return np.concatenate([colorize_row(task, model, image, size, temperature) for image in arrays], axis=0)


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise UserError(f"colorize: could not write {str(path)!r}")


def run(args: argparse.Namespace) -> int:
    """The ``sslreg colorize`` command: 0 on success, 2 with a one-line error on a bad path or value."""
    try:
        grid = colorize_grid(args.checkpoint, args.images, args.size, args.temperature)
        write_png(args.out, grid)
    except (FileNotFoundError, ValueError, LookupError, RuntimeError) as error:  # LookupError: unknown backbone
        print(f"sslreg: error: {(str(error).splitlines() or [type(error).__name__])[0]}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({grid.shape[1]}×{grid.shape[0]}, {len(args.images)} image(s))")
    return 0


def add_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``colorize`` on the ``sslreg`` CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "colorize",
        help="colourise images with a colorization checkpoint; writes gray | prediction | truth rows",
        description="Colourise grayscale versions of images with a colorization checkpoint; writes a PNG grid.",
    )
    parser.add_argument("checkpoint", help="pretraining checkpoint (.pth) of a colorization run")
    parser.add_argument("images", nargs="+", help="image files (any format OpenCV reads)")
    parser.add_argument("--out", default="colorized.png", help="PNG grid to write (default: colorized.png)")
    parser.add_argument("--temperature", type=float, default=0.38, help="annealed-mean temperature (default 0.38)")
    parser.add_argument("--size", type=int, default=None, help="tile side in pixels (default: the task's image_size)")
    parser.set_defaults(func=run)
    return parser
