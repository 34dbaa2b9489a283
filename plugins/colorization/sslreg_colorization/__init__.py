"""sslreg-colorization: the Colorization pretext task (Zhang et al. 2016) with scalable problem complexity K."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sslreg import hookimpl
from sslreg_colorization.bins import compute_gamut_bins, effective_k, gamut_bins, load_bins, zhang_bins
from sslreg_colorization.colorization import Colorization, ColorizationConfig
from sslreg_colorization.encoding import (
    annealed_mean,
    nearest_bin,
    soft_encode,
    soft_encode_sparse,
)
from sslreg_colorization.lab import lab_to_rgb, rgb_to_lab
from sslreg_colorization.model import ColorizationHead, ColorizationModel
from sslreg_colorization.priors import rebalance_weights, smooth_priors

SSLREG_API_VERSION = 1

__all__ = [
    "Colorization",
    "ColorizationConfig",
    "ColorizationHead",
    "ColorizationModel",
    "annealed_mean",
    "compute_gamut_bins",
    "effective_k",
    "gamut_bins",
    "lab_to_rgb",
    "load_bins",
    "nearest_bin",
    "rebalance_weights",
    "rgb_to_lab",
    "smooth_priors",
    "soft_encode",
    "soft_encode_sparse",
    "zhang_bins",
]


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the ``colorization`` pretext task."""
    register(Colorization)


@hookimpl
def sslreg_commands(subparsers: Any) -> None:
    """Add ``sslreg colorize``."""
    from sslreg_colorization.colorize import add_command

    add_command(subparsers)
