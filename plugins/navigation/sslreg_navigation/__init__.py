"""sslreg plugin: visual navigation, PPO on frozen trunk features in MiniWorld (docs/protocol.md#visual-navigation)."""

from sslreg import hookimpl
from sslreg_navigation.navigation import Navigation, NavigationConfig

SSLREG_API_VERSION = 1

__all__ = ["Navigation", "NavigationConfig", "SSLREG_API_VERSION"]


@hookimpl
def sslreg_register(register) -> None:
    """Register the ``navigation`` evaluator."""
    register(Navigation)
