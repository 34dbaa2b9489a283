"""Without working OpenGL/EGL the evaluator stops with one line naming the Debian packages (exit 2 from the CLI).

The absence is simulated the way libglvnd sees it: pointing its EGL vendor list at a file that does not exist
is what a machine without libegl-mesa0 looks like to pyglet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sslreg_navigation import gl

from sslreg import UserError

NO_VENDOR = {"__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent/sslreg-no-egl-vendor.json"}


@pytest.fixture
def fresh_probe():
    gl.gl_renderer.cache_clear()
    yield
    gl.gl_renderer.cache_clear()


def test_missing_egl_is_one_line_naming_the_packages(monkeypatch: pytest.MonkeyPatch, fresh_probe) -> None:
    for key, value in NO_VENDOR.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UserError) as caught:
        gl.gl_renderer()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("navigation: OpenGL/EGL is not available (")
    assert message.endswith("install the Debian packages libegl1 libegl-mesa0 libgl1-mesa-dri")


def test_pyglet_2_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch, fresh_probe) -> None:
    monkeypatch.setattr(gl.metadata, "version", lambda name: "2.0.10")
    with pytest.raises(UserError, match=r"needs pyglet < 2, found pyglet 2\.0\.10; pip install 'pyglet<2'"):
        gl.gl_renderer()


def test_cli_run_without_egl_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "nav.yaml"
    config.write_text(
        "name: nav_no_gl\nseed: 0\nbackbone: {name: resnet18}\n"
        "evaluate:\n  - {name: navigation, layers: [res5], frames: 64, runs: 1}\n"
    )
    command = [sys.executable, "-m", "sslreg.cli", "run", str(config), "--set", f"work_dir={tmp_path / 'run'}"]
    env = {**os.environ, **NO_VENDOR, "SSLREG_LOAD_PLUGINS": "backbones,navigation"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "OpenGL/EGL" in line]
    assert len(errors) == 1 and "libegl1 libegl-mesa0 libgl1-mesa-dri" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # found at validation, before any work
