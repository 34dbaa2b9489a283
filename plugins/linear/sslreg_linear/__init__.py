"""sslreg plugin: one linear head per layer of a frozen trunk (docs/protocol.md#places205-linear-classification)."""

from sslreg import hookimpl
from sslreg_linear.linear_probe import LinearProbe, LinearProbeConfig

SSLREG_API_VERSION = 1

__all__ = ["LinearProbe", "LinearProbeConfig", "SSLREG_API_VERSION"]


@hookimpl
def sslreg_register(register) -> None:
    """Register the ``linear_probe`` evaluator."""
    register(LinearProbe)
