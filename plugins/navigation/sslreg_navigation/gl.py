"""Headless OpenGL for MiniWorld: probe it once in a child process, then import MiniWorld with pyglet headless.

MiniWorld renders through pyglet 1.5, which opens an EGL context when ``pyglet.options['headless']`` is set
before its window module is imported. Without Mesa's EGL and GL drivers that fails deep in pyglet (or in the
driver, which can take the process with it), so the check runs in a child process and a missing piece becomes
one line naming the Debian packages to install.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from importlib import metadata
from types import ModuleType

from sslreg import UserError

PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri"

_PROBE = """
import pyglet
pyglet.options["headless"] = True
from pyglet import gl
import pyglet.window
window = pyglet.window.Window(width=1, height=1, visible=False)
print(gl.gl_info.get_renderer())
"""


def _pyglet_version() -> str:
    try:
        version = metadata.version("pyglet")
    except metadata.PackageNotFoundError:
        raise UserError("navigation: pyglet is not installed; pip install 'pyglet<2'") from None
    if int(version.split(".")[0]) >= 2:
        raise UserError(f"navigation: MiniWorld needs pyglet < 2, found pyglet {version}; pip install 'pyglet<2'")
    return version


@functools.cache
def gl_renderer() -> str:
    """The OpenGL renderer a headless pyglet context gets (e.g. 'llvmpipe ...'), or a one-line UserError."""
    _pyglet_version()
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"navigation: OpenGL/EGL probe timed out; check the Debian packages {PACKAGES}") from None
    if probe.returncode != 0:
        lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit code {probe.returncode}"
        raise UserError(
            f"navigation: OpenGL/EGL is not available ({why[:200]}); install the Debian packages {PACKAGES}"
        )
    return probe.stdout.strip()


def miniworld() -> ModuleType:
    """MiniWorld, imported with pyglet headless (EGL) after the probe found a working GL context."""
    gl_renderer()
    if importlib.util.find_spec("triton") is not None:
        # Loading triton's compiled module (torch imports it lazily, e.g. at the first optimizer step) after
        # Mesa's llvmpipe has made a GL context crashes the process (triton 3.8, Mesa 22.3); the other way is fine.
        import triton  # noqa: F401
    import pyglet

    pyglet.options["headless"] = True
    import miniworld

    return miniworld
