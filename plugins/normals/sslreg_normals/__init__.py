"""sslreg-normals: NYUv2 surface-normal estimation from a frozen trunk (docs/protocol.md#surface-normals).

Registers the ``nyuv2_normals`` evaluator, the ``nyuv2`` reader of the normals layout and the ``rendered_normals``
demo scenes; adds ``sslreg convert-nyuv2`` (NYUv2 .mat files to the layout).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sslreg import hookimpl

SSLREG_API_VERSION = 1


@hookimpl
def sslreg_register(register: Callable[[type], None]) -> None:
    """Register the nyuv2_normals evaluator and the nyuv2 / rendered_normals datasets."""
    from sslreg_normals.demo import RenderedNormals
    from sslreg_normals.evaluator import NyuNormals
    from sslreg_normals.nyuv2 import NormalsFolder

    register(NyuNormals)
    register(NormalsFolder)
    register(RenderedNormals)


@hookimpl
def sslreg_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sslreg convert-nyuv2``."""
    from sslreg_normals.convert import add_command

    add_command(subparsers)
