"""``sslreg plugin new NAME``: scaffold a pip-installable plugin package with one working component and its tests."""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

from sslreg.errors import UserError

PYPROJECT = """[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "sslreg-{name}"
version = "0.1.0"
description = "{summary}"
requires-python = ">=3.10"
dependencies = ["sslreg>=0.1,<0.2"]

[project.entry-points.sslreg]
{name} = "{module}"

[tool.setuptools.packages.find]
include = ["{module}*"]
"""

INIT = '''"""sslreg plugin {name}: {summary}"""

from sslreg import hookimpl

from {module}.{name} import {cls}

SSLREG_API_VERSION = 1


@hookimpl
def sslreg_register(register):
    register({cls})
'''

PRETEXT = '''"""{cls}: predict which of four rotations (0, 90, 180, 270 degrees) an image shows (Gidaris 2018)."""

import numpy as np
import torch
from pydantic import Field
from torch import nn

from sslreg import Backbone, PretextConfig, PretextModel, PretextTask


class {cls}Config(PretextConfig):
    image_size: int = Field(64, ge=16, description="Square size the image is resized to.")


class {cls}(PretextTask):
    """Rotation prediction: a 4-way classification of the rotation applied to the image."""

    name = "{name}"
    Config = {cls}Config

    def make_sample(self, image: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.image_size
        rows = np.linspace(0, image.shape[0] - 1, size).astype(int)
        cols = np.linspace(0, image.shape[1] - 1, size).astype(int)
        pixels = image[rows][:, cols].astype(np.float32) / 127.5 - 1.0
        turns = int(rng.integers(4))
        rotated = np.ascontiguousarray(np.rot90(pixels, turns))
        return torch.from_numpy(rotated).permute(2, 0, 1), torch.tensor(turns)

    def build_model(self, trunk: Backbone) -> PretextModel:
        channels = trunk.layer_channels[trunk.layer_names[-1]]
        return PretextModel(trunk, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 4)))

    def loss(self, model: PretextModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        features = model.trunk(inputs)[model.trunk.layer_names[-1]]
        return nn.functional.cross_entropy(model.head(features), targets)
'''

BACKBONE = '''"""{cls}: a small VGG-style trunk with three tapped stages."""

from typing import Sequence

import torch
from pydantic import Field
from torch import nn

from sslreg import Backbone, BackboneConfig, PoolSpec


class {cls}Config(BackboneConfig):
    width: int = Field(32, ge=4, le=1024, description="Channels of the first stage (doubled per stage).")


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class {cls}(Backbone):
    """Three conv stages (stride 2, 4, 8) with taps s1, s2, s3."""

    name = "{name}"
    Config = {cls}Config
    layer_names = ("s1", "s2", "s3")
    input_size = 64

    def __init__(self, config: {cls}Config) -> None:
        super().__init__(config)
        w = config.width
        self.s1, self.s2, self.s3 = _stage(config.in_channels, w), _stage(w, 2 * w), _stage(2 * w, 4 * w)

    @property
    def layer_channels(self) -> dict[str, int]:
        w = self.config.width
        return {{"s1": w, "s2": 2 * w, "s3": 4 * w}}

    @property
    def layer_strides(self) -> dict[str, int]:
        return {{"s1": 2, "s2": 4, "s3": 8}}

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        return {{"s1": PoolSpec(8, 8, 0, 4), "s2": PoolSpec(4, 4, 0, 4), "s3": PoolSpec(2, 2, 0, 4)}}

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = self.resolve_layers(layers)
        out = {{}}
        for layer in self.layer_names:
            x = getattr(self, layer)(x)
            out[layer] = x
            if layer == wanted[-1]:
                break
        return {{layer: out[layer] for layer in wanted}}
'''

TEST = """import {module}
from sslreg.testing import check_plugin


def test_plugin_conforms():
    entries = check_plugin({module})
    assert [entry.name for entry in entries] == ["{name}"]
"""

README = """# sslreg-{name}

{summary}

    pip install -e .
    sslreg list            # shows {name}
    pytest tests           # the conformance kit
"""

TEMPLATES = {"pretext": PRETEXT, "backbone": BACKBONE}
SUMMARIES = {"pretext": "Rotation-prediction pretext task", "backbone": "A small VGG-style trunk"}


def scaffold(name: str, kind: str, parent: Path) -> Path:
    """Write the plugin package ``sslreg-<name>`` under ``parent`` and return its folder."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise UserError(f"plugin name {name!r}: use lower-case letters, digits and '_' (a Python identifier)")
    if kind not in TEMPLATES:
        raise UserError(f"--kind {kind!r}: templates exist for {', '.join(TEMPLATES)}")
    root = parent / f"sslreg-{name}"
    if root.exists():
        raise UserError(f"{root}: already exists; not overwriting it")
    module = f"sslreg_{name}"
    fields = {
        "name": name,
        "module": module,
        "cls": "".join(part.title() for part in name.split("_")),
        "summary": SUMMARIES[kind],
    }
    files = {
        "pyproject.toml": PYPROJECT,
        f"{module}/__init__.py": INIT,
        f"{module}/{name}.py": TEMPLATES[kind],
        "tests/test_conformance.py": TEST,
        "README.md": README,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields), encoding="utf-8")
    return root


def cmd_plugin_new(args: argparse.Namespace) -> int:
    """sslreg plugin new NAME: write a plugin package with one component, ready for pip install -e."""
    root = scaffold(args.name, args.kind, Path(args.dir))
    print(f"created {root}\nnext: pip install -e {root} && sslreg list && pytest {root / 'tests'}")
    return 0


def add_plugin_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sslreg plugin new``."""
    plugin = subparsers.add_parser("plugin", help="plugin authoring tools")
    actions = plugin.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="scaffold a new plugin package")
    new.add_argument("name", help="plugin name, e.g. rotation")
    new.add_argument("--kind", default="pretext", choices=list(TEMPLATES), help="component kind of the template")
    new.add_argument("--dir", default=".", help="parent folder (default: current)")
    new.set_defaults(func=cmd_plugin_new)
