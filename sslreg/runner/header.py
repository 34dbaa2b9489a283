"""The run log's header: versions and the plugins in use, as pytest's session header lists them."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import mmengine
import torch

import sslreg
from sslreg.registry import Registry


def components_used(experiment: Any) -> list[tuple[str, str]]:
    """(kind, name) of every component the experiment names."""
    used = []
    if experiment.pretrain is not None:
        used += [
            ("pretext", experiment.pretrain.pretext.name),
            ("backbone", experiment.pretrain.backbone.name),
            ("dataset", experiment.pretrain.data.name),
        ]
    if experiment.backbone is not None:
        used.append(("backbone", experiment.backbone.name))
    for spec in experiment.evaluate:
        used.append(("evaluator", spec.name))
        for _, value in spec:
            if hasattr(value, "name") and hasattr(value, "model_dump") and value is not spec:
                used.append(("dataset", value.name))
    return list(dict.fromkeys(used))


def _plugins(registry: Registry) -> list[tuple[str, str, str]]:
    """(name, version, status) of the installed plugins: from the loaded plugin state when ``registry`` is the
    process-wide one, else read from the entry-point metadata without importing anything."""
    from sslreg import plugins

    loaded = plugins._LOADED
    if loaded is not None and loaded.registry is registry:
        return [(p.name, p.version, p.status) for p in loaded.plugins]
    found = []
    for entry_point in metadata.entry_points(group=plugins.ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        found.append((entry_point.name, dist.version if dist else "?", "installed"))
    return sorted(found)


def header(experiment: Any, registry: Registry) -> str:
    """A few lines: platform and library versions, installed plugins with versions, the components used."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    lines = [
        f"sslreg {sslreg.__version__} -- python {platform.python_version()}, torch {torch.__version__},"
        f" mmengine {mmengine.__version__}, {platform.system().lower()}, device {device}",
    ]
    listed = ", ".join(
        f"{name}-{version}" + (f" ({status})" if status != "ok" else "") for name, version, status in _plugins(registry)
    )
    lines.append(f"plugins: {listed or 'none installed'}")
    used = []
    for kind, name in components_used(experiment):
        try:
            entry = registry.get(kind, name)
        except LookupError:
            continue
        used.append(f"{kind} {name} ({entry.plugin or '?'} {entry.provider or ''})".replace(" )", ")"))
    lines.append("components: " + ", ".join(used))
    return "\n".join(lines)
