"""Load experiment files safely: YAML through mmengine Config (``_base_``, overrides), never PyYAML's unsafe loader.

mmengine's Config.fromfile reads YAML with PyYAML's full loader, so a ``!!python/object/apply`` tag would run
code. Every YAML file of the ``_base_`` chain is therefore parsed with ``yaml.safe_load`` first and refused if
it holds any such tag; Python configs execute by design and are accepted only when the user opts in.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sslreg.experiment import ConfigError, ExperimentConfig, point_label, set_path, sweep_points, validate_experiment
from sslreg.registry import Registry

ALLOW_PYTHON_ENV = "SSLREG_ALLOW_PYTHON_CONFIG"
YAML_SUFFIXES = (".yaml", ".yml", ".json")


def _safe_parse(path: Path, allow_python: bool, seen: set[Path]) -> None:
    """Parse ``path`` and its ``_base_`` files safely; raise ConfigError naming the file and line."""
    if path in seen:
        raise ConfigError([f"_base_ cycle through {path}"])
    seen = seen | {path}
    if not path.is_file():
        raise ConfigError([f"{path}: no such config file"])
    if path.suffix == ".py":
        if not allow_python:
            raise ConfigError(
                [
                    f"{path}: Python configs execute code; pass --allow-python-config"
                    f" (or set {ALLOW_PYTHON_ENV}=1) to trust it"
                ]
            )
        return
    if path.suffix not in YAML_SUFFIXES:
        raise ConfigError([f"{path}: unsupported config type {path.suffix!r} (use .yaml, .yml or .json)"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: refusing unsafe YAML ({error.problem}); only plain YAML is accepted"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: invalid YAML: {getattr(error, 'problem', None) or error}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot read: {error}"]) from None
    bases = data.get("_base_", []) if isinstance(data, dict) else []
    for base in [bases] if isinstance(bases, str) else bases:
        _safe_parse((path.parent / base).resolve(), allow_python, seen)


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=3' -> ('a.b', 3); the value is read as YAML (safely), so numbers, lists and null work."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"--set {text!r}: expected PATH=VALUE, e.g. pretrain.schedule.epochs=2"])
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        return key.strip(), value


def load_raw(path: str | os.PathLike[str], overrides: Sequence[str] = (), allow_python: bool = False) -> dict[str, Any]:
    """The merged config dict of ``path`` (``_base_`` resolved) with ``--set`` overrides applied."""
    from mmengine.config import Config

    path = Path(path).resolve()
    allow_python = allow_python or os.environ.get(ALLOW_PYTHON_ENV, "") not in ("", "0")
    _safe_parse(path, allow_python, set())
    try:
        raw = Config.fromfile(str(path)).to_dict()
    except Exception as error:  # noqa: BLE001 - mmengine reports user mistakes as assorted exceptions
        raise ConfigError([f"{path}: {type(error).__name__}: {error}"]) from None
    for text in overrides:
        key, value = parse_override(text)
        try:
            set_path(raw, key, value)
        except (KeyError, IndexError, ValueError, TypeError):
            raise ConfigError([f"--set {text!r}: no such path {key!r} in the config"]) from None
    return raw


@dataclass
class Plan:
    """A validated experiment file: one experiment, or one per sweep point."""

    source: str
    raw: dict[str, Any]
    points: list[tuple[str, dict[str, Any], ExperimentConfig]]

    @property
    def is_sweep(self) -> bool:
        return bool(self.raw.get("sweep"))


def load_plan(
    path: str | os.PathLike[str], registry: Registry, overrides: Sequence[str] = (), allow_python: bool = False
) -> Plan:
    """Load and validate ``path`` (and every sweep point) before any work starts."""
    raw = load_raw(path, overrides, allow_python)
    source = str(path)
    base = validate_experiment(raw, registry, source)  # also checks the sweep grid's own shape
    if not base.sweep:
        return Plan(source, raw, [("", {}, base)])
    problems: list[str] = []
    points = []
    for point, config in sweep_points(raw):
        try:
            points.append((point_label(point), point, validate_experiment(config, registry, source)))
        except ConfigError as error:
            label = ", ".join(f"{k}={v!r}" for k, v in point.items())
            problems.extend(f"sweep point ({label}): {p}" for p in error.problems if p not in problems)
    if problems:
        raise ConfigError(problems, source)
    return Plan(source, raw, points)


__all__ = ["ConfigError", "Plan", "load_plan", "load_raw", "parse_override", "set_path"]
