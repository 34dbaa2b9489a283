"""A test registry with the first-party contrastive pretext tasks (moco_v2, simclr, inpainting when installed)
beside the tiny test trunk and in-memory images, and a script entry point with the reliability tests' fault
injection (see reliability_helpers.py):

    python tests/contract_helpers.py CONFIG.yaml
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import reliability_helpers
import runner_helpers as helpers

from sslreg.registry import Registry

#: Pretext plugins added to the test registry: (module, class).
PRETEXTS = (("sslreg_moco_v2", "MocoV2"), ("sslreg_simclr", "SimCLR"), ("sslreg_rotation", "Rotation"))


def make_registry() -> Registry:
    """TinyNet, the memory sources and the centroid evaluator, plus the installed first-party pretext tasks."""
    registry = Registry()
    for cls in (helpers.TinyNet, helpers.MemorySource, helpers.MemoryStream, helpers.Centroid):
        registry.add(cls, plugin="test", distribution="tests", version="0")
    for module, name in PRETEXTS:
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:
            continue
        registry.add(cls, plugin=module, distribution=module, version="0")
    return registry


def experiment(tmp: Path, pretext: dict[str, Any], **schedule: Any) -> dict[str, Any]:
    """A tiny pretraining (no evaluation) of ``pretext`` on 32 in-memory 20 px images with TinyNet."""
    raw = helpers.experiment_dict(tmp, **schedule)
    raw["pretrain"]["pretext"] = pretext
    raw["evaluate"] = []
    return raw


def main(argv: list[str]) -> int:
    from sslreg.cli import run_guarded
    from sslreg.config import load_plan
    from sslreg.runner import run_plan

    registry = make_registry()
    return run_guarded(lambda: run_plan(load_plan(argv[0], registry, argv[1:]), registry))


if __name__ == "__main__":
    reliability_helpers.install()
    sys.exit(main(sys.argv[1:]))
