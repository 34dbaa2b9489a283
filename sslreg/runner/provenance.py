"""Provenance of a run's results: software and plugin versions, git commit, device, seeds, data, stage times.

Everything here is plain JSON, stored under ``provenance`` in results.json and summarised in results.csv
(comment lines) and results.md, so a results file says how it was produced without the run folder.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sslreg
from sslreg.experiment import ExperimentConfig
from sslreg.registry import Registry
from sslreg.runner.header import components_used


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def plugins(registry: Registry) -> list[dict[str, str]]:
    """Installed plugins: entry-point name, distribution, version and status."""
    from sslreg import plugins as loader

    loaded = loader._LOADED
    if loaded is not None and loaded.registry is registry:
        return [
            {"plugin": p.name, "distribution": p.distribution, "version": p.version, "status": p.status}
            for p in loaded.plugins
        ]
    found = []
    for entry_point in metadata.entry_points(group=loader.ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        found.append(
            {
                "plugin": entry_point.name,
                "distribution": dist.name if dist else "?",
                "version": dist.version if dist else "?",
                "status": "installed",
            }
        )
    return sorted(found, key=lambda item: item["plugin"])


def components(experiment: ExperimentConfig, registry: Registry) -> dict[str, str]:
    """'kind name' -> 'distribution version' of every component the experiment uses."""
    used = {}
    for kind, name in components_used(experiment):
        try:
            entry = registry.get(kind, name)
        except LookupError:
            used[f"{kind} {name}"] = "?"
            continue
        used[f"{kind} {name}"] = f"{entry.distribution or entry.plugin or '?'} {entry.version}".strip()
    return used


def git_commit(path: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``path`` (default: sslreg's own source), or None
    when it is not in a checkout (an installed wheel) or git is missing."""
    folder = path or Path(sslreg.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())} if commit else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device() -> dict[str, Any]:
    """Where the run computed: GPU name(s) when CUDA is available, the CPU model and core count."""
    info: dict[str, Any] = {
        "cpu": _cpu_name(),
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    info["used"] = "cuda" if torch.cuda.is_available() else "cpu"
    return info


def software() -> dict[str, Any]:
    """Versions of Python and the libraries results depend on (CUDA/cuDNN as torch was built with them)."""
    return {
        "sslreg": sslreg.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "mmengine": _distribution_version("mmengine"),
        "numpy": np.__version__,
        "scikit-learn": _distribution_version("scikit-learn"),
        "os": f"{platform.system()} {platform.release()}",
    }


def seeds(config: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Every seed of the resolved config, by dotted path (``seed``, ``pretrain.backbone.seed``, ...)."""
    found: dict[str, Any] = {}
    items = config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else ()
    for key, value in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, (dict, list)):
            found.update(seeds(value, where))
        elif str(key).endswith("seed") and (value is None or isinstance(value, int)):
            found[where] = value
    return found


def provenance(experiment: ExperimentConfig, registry: Registry, data: dict[str, Any]) -> dict[str, Any]:
    """The provenance block of one run's results (``data``: dataset fingerprints by use). Deterministic for a
    finished run (no clock reading here), so rewriting its results leaves the files as they are; the runner adds
    ``stages``: each stage's wall time and finish time, from its record."""
    config = experiment.model_dump(mode="json")
    return {
        "seeds": seeds(config),
        "software": software(),
        "plugins": plugins(registry),
        "components": components(experiment, registry),
        "git": git_commit(),
        "device": device(),
        "data": data,
    }


__all__ = ["device", "git_commit", "plugins", "provenance", "seeds", "software"]
