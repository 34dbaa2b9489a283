"""sslreg-backbones: AlexNet (CaffeNet, Jigsaw AlexNet) and ResNet trunks with per-layer taps (the capacity axis)."""

from __future__ import annotations

from collections.abc import Callable

from sslreg import hookimpl
from sslreg_backbones.alexnet import AlexNet
from sslreg_backbones.alexnet_jigsaw import AlexNetJigsaw
from sslreg_backbones.resnet import ResNet, ResNet18, ResNet34, ResNet50, ResNet50W2, ResNet101

SSLREG_API_VERSION = 1

#: Every trunk this plugin registers, in the order ``sslreg list`` shows them.
BACKBONES: tuple[type, ...] = (AlexNet, AlexNetJigsaw, ResNet18, ResNet34, ResNet50, ResNet101, ResNet50W2)


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the AlexNet and ResNet trunks."""
    for cls in BACKBONES:
        register(cls)


__all__ = [
    "BACKBONES",
    "AlexNet",
    "AlexNetJigsaw",
    "ResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet50W2",
    "ResNet101",
]
