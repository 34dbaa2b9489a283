"""sslreg-svm: linear-SVM benchmarks (VOC07 SVM, low-shot VOC07) on frozen trunk features."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sslreg import hookimpl

SSLREG_API_VERSION = 1


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the voc07_svm and low_shot evaluators."""
    from sslreg_svm.low_shot import LowShot
    from sslreg_svm.voc07_svm import VOC07SVM

    register(VOC07SVM)
    register(LowShot)


@hookimpl
def sslreg_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sslreg evaluate voc07_svm --features FILE.npz``."""
    from sslreg_svm.cli import add_evaluate_command

    add_evaluate_command(subparsers)
