"""The core wheel ships registry.yaml, and `sslreg plugins` finds the catalogue in a non-editable install."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from sslreg.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[1]


def build_core_wheel(tmp_path: Path) -> Path:
    """``pip wheel --no-deps .`` of a clean copy of the core (the checkout itself stays free of build output)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "registry.yaml"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "sslreg", source / "sslreg", symlinks=True, ignore=ignore)
    out = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [wheel] = out.glob("sslreg-*.whl")
    return wheel


def test_wheel_contains_the_catalogue_and_an_install_from_it_shows_it(tmp_path):
    wheel = build_core_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("sslreg/registry.yaml") == (ROOT / "registry.yaml").read_bytes()
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    env = {key: value for key, value in os.environ.items() if key != "SSLREG_CATALOGUE"}
    env["PYTHONPATH"] = str(target)  # ahead of the editable install: this sslreg is the wheel's
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sslreg, sys; from sslreg.cli import main; print(sslreg.__file__); main()",
            "plugins",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(target / "sslreg" / "__init__.py")
    known = len(load_catalogue(ROOT / "registry.yaml").plugins)
    assert f"catalogue: {target / 'sslreg' / 'registry.yaml'} ({known} known plugins," in result.stdout
