"""Load experiment files safely (``_base_`` inheritance, ``--set`` overrides, placeholders) and validate them.

No YAML goes through mmengine: each file is parsed with PyYAML's safe loader within limits (sslreg.configfile),
bases are merged as mmengine merges them (later files and the child override; lists are replaced whole;
``_delete_: true`` replaces a mapping), then ``--set`` overrides apply, and only then are ``{{$VAR}}``-style
placeholders substituted in the parsed values (sslreg.placeholders), never in text. Python configs execute
code; they go through mmengine and only with ``--allow-python-config``.

``load_plan`` then validates the whole config, and every sweep point, in one pass, and checks that the data
each dataset names is there (``DatasetSource.check``); every problem comes back together, each naming the file
its value was written in and its dotted path.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sslreg.backbone import BackboneConfig
from sslreg.component import ComponentConfig
from sslreg.configfile import CODE_KEYS, parse_value, plain_tree, read_file
from sslreg.errors import UserError
from sslreg.experiment import (
    ConfigError,
    ExperimentConfig,
    Path_,
    PathError,
    check_experiment,
    format_loc,
    parse_path,
    point_label,
    set_path,
    sweep_issues,
)
from sslreg.placeholders import Placeholder, substitute
from sslreg.problems import ConfigProblems, Problem, refuse
from sslreg.registry import Registry

ALLOW_PYTHON_ENV = "SSLREG_ALLOW_PYTHON_CONFIG"
MAX_BASE_FILES = 32  # _base_ files read for one config, all levels together


def _shown(path: Path) -> str:
    """A file as named in messages: relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _lookup(origins: Mapping[Path_, str], path: Path_) -> str:
    """The file that wrote ``path``: the entry of its longest recorded prefix."""
    for size in range(len(path), -1, -1):
        source = origins.get(path[:size])
        if source is not None:
            return source
    return ""


def _forget(origins: dict[Path_, str], path: Path_) -> None:
    for key in [key for key in origins if key[: len(path)] == path]:
        del origins[key]


def _strip_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _strip_delete(item) for key, item in value.items() if key != "_delete_"}
    if isinstance(value, list):
        return [_strip_delete(item) for item in value]
    return value


def _merge(
    base: dict[str, Any], child: dict[str, Any], prefix: Path_, origins: dict[Path_, str], child_origins: dict
) -> dict[str, Any]:
    """``child`` merged into a copy of ``base`` with mmengine's rules; ``origins`` follows what comes from where."""
    merged = dict(base)
    for key, value in child.items():
        here = (*prefix, key)
        if isinstance(value, dict):
            delete = value.get("_delete_", False)
            if not isinstance(delete, bool):
                raise refuse("_delete_ must be true or false", _lookup(child_origins, here), path=format_loc(here))
            if key in merged and not delete:
                if isinstance(merged[key], dict):
                    own = {k: v for k, v in value.items() if k != "_delete_"}
                    merged[key] = _merge(merged[key], own, here, origins, child_origins)
                    continue
                raise refuse(
                    f"a mapping cannot extend the value of {_lookup(origins, here)} (not a mapping);"
                    " add `_delete_: true` to replace it",
                    _lookup(child_origins, here),
                    path=format_loc(here),
                )
        _forget(origins, here)
        origins.update({k: v for k, v in child_origins.items() if k[: len(here)] == here})
        origins[here] = _lookup(child_origins, here)
        merged[key] = _strip_delete(value)
    return merged


class _Composer:
    """Reads a config and its ``_base_`` files (recursively, each once per chain), merging them in order."""

    def __init__(self, allow_python: bool, environ: Mapping[str, str]) -> None:
        self.allow_python = allow_python
        self.environ = environ
        self.files = 0

    def base_path(self, name: Any, path: Path, shown: str) -> Path:
        if isinstance(name, Placeholder):
            result = substitute(name, self.environ)
            if result.missing or result.unknown:
                what = f"${result.missing[0]} is not set" if result.missing else f"unknown {result.unknown[0]}"
                raise refuse(f"{what} in {name.text!r}", shown, path="_base_")
            name = str(result.value)
        if not isinstance(name, str) or not name or "\0" in name:
            raise refuse(f"expected a file name or a list of file names (got {name!r})", shown, path="_base_")
        return Path(os.path.abspath(path.parent / name))

    def compose(self, path: Path, shown: str, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[Path_, str]]:
        data = read_file(path, shown, self.allow_python)
        bases = data.pop("_base_", [])
        names = [bases] if isinstance(bases, (str, Placeholder)) else bases
        if not isinstance(names, list):
            raise refuse(f"expected a file name or a list of file names (got {bases!r})", shown, path="_base_")
        merged: dict[str, Any] = {}
        origins: dict[Path_, str] = {}
        for name in names:
            base = self.base_path(name, path, shown)
            self.files += 1
            if self.files > MAX_BASE_FILES:
                raise refuse(f"more than {MAX_BASE_FILES} _base_ files in all; refusing it", shown, path="_base_")
            if base.resolve() in chain:
                raise refuse(f"{name!r} is a base of itself (a _base_ cycle)", shown, path="_base_")
            if not base.exists():
                raise refuse(f"{name!r}: no such config file ({_shown(base)})", shown, path="_base_")
            if base.is_dir():
                raise refuse(f"{name!r} is a folder, not a config file", shown, path="_base_")
            data_b, origins_b = self.compose(base, _shown(base), (*chain, base.resolve()))
            merged = _merge(merged, data_b, (), origins, origins_b)
        merged = _merge(merged, data, (), origins, {(): shown})
        origins[()] = shown
        return merged, origins


def _override(raw: dict[str, Any], origins: dict[Path_, str], text: str) -> None:
    """Apply one ``--set PATH=VALUE`` (VALUE read as YAML, safely); ``sweep.a.b=[...]`` sets one sweep path."""
    where = f"--set {text!r}" if len(text) <= 60 else f"--set {text[:57]!r}..."
    key, sep, value_text = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise refuse("expected PATH=VALUE, e.g. pretrain.schedule.epochs=2", where)
    try:
        path: Path_ = ("sweep", key[len("sweep.") :]) if key.startswith("sweep.") else parse_path(key)
        if key.startswith("sweep."):
            parse_path(path[1])
    except PathError as error:
        raise refuse(str(error), where) from None
    if path[0] == "_base_":
        raise refuse("_base_ cannot be set from the command line; write a config that names its bases", where)
    code = [part for part in path if part in CODE_KEYS]
    if code:
        raise refuse(f"refusing {code[0]!r}: {CODE_KEYS[code[0]]}; sslreg configs cannot load code", where)
    value = plain_tree(parse_value(value_text, where), Path.cwd(), where, placeholders=False)
    try:
        walked = set_path(raw, path, value)
    except PathError as error:
        raise refuse(str(error), where) from None
    _forget(origins, walked)
    origins[walked] = "--set"


@dataclass
class LoadedConfig:
    """One config with its bases and overrides applied and placeholders substituted, and where values came from."""

    raw: dict[str, Any]
    source: str
    #: Config path -> file it was written in ('--set' for overrides); look up with the longest prefix.
    origins: dict[Path_, str]
    #: Config path -> environment variable that was unset, so the placeholder's default was used.
    defaulted: dict[Path_, str]
    #: Placeholders that cannot be substituted (a variable without default that is unset, an unknown name).
    problems: list[Problem]
    #: Config paths of those placeholders (other problems under them are consequences, not reported).
    unsubstituted: set[Path_] = field(default_factory=set)


def _substitute_all(value: Any, path: Path_, loaded: LoadedConfig, environ: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _substitute_all(item, (*path, key), loaded, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute_all(item, (*path, index), loaded, environ) for index, item in enumerate(value)]
    if not isinstance(value, Placeholder):
        return value
    result = substitute(value, environ)
    dotted = format_loc(path)
    if result.missing or result.unknown:
        loaded.unsubstituted.add(path)
    for name in result.defaulted:
        loaded.defaulted[path] = name
    for name in result.missing:
        loaded.problems.append(
            Problem(
                f"${name} is not set and {{{{${name}}}}} has no default: set it, or --set {dotted}=...",
                dotted,
                value.shown,
            )
        )
    for text in result.unknown:
        loaded.problems.append(
            Problem(
                f"unknown placeholder {text!r}: use {{{{$VAR}}}}, {{{{$VAR:default}}}} or one of {{{{ fileDirname }}}},"
                " {{ fileBasename }}, {{ fileBasenameNoExtension }}, {{ fileExtname }}",
                dotted,
                value.shown,
            )
        )
    return result.value


def load_config(
    path: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    allow_python: bool = False,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Read ``path`` and its bases safely, apply ``--set`` overrides, then substitute placeholders.

    Refusals that stop loading (unsafe or broken files, limits, code-loading keys, bad overrides) raise
    ConfigProblems with one line; placeholders that cannot be substituted are returned as problems.
    """
    environ = os.environ if environ is None else environ
    allow_python = allow_python or environ.get(ALLOW_PYTHON_ENV, "") not in ("", "0")
    shown = os.fspath(path)
    file = Path(os.path.abspath(shown))
    raw, origins = _Composer(allow_python, environ).compose(file, shown, (file.resolve(),))
    for text in overrides:
        _override(raw, origins, text)
    loaded = LoadedConfig({}, shown, origins, {}, [])
    loaded.raw = _substitute_all(raw, (), loaded, environ)
    return loaded


def load_raw(path: str | os.PathLike[str], overrides: Sequence[str] = (), allow_python: bool = False) -> dict[str, Any]:
    """The merged config dict of ``path`` (``_base_`` resolved) with ``--set`` overrides and placeholders applied."""
    loaded = load_config(path, overrides, allow_python)
    if loaded.problems:
        raise ConfigProblems(loaded.problems)
    return loaded.raw


@dataclass
class Plan:
    """A validated experiment file: one experiment, or one per sweep point (label, point, experiment)."""

    source: str
    raw: dict[str, Any]
    points: list[tuple[str, dict[str, Any], ExperimentConfig]]
    #: Dotted config path -> environment variable that was unset, so its placeholder's default is in use.
    unresolved: dict[str, str] = field(default_factory=dict)

    @property
    def is_sweep(self) -> bool:
        return bool(self.raw.get("sweep"))

    def hint(self, path: str) -> str:
        """' (set $VAR, or --set PATH=...)' when ``path`` (or a path under it) took a placeholder's default."""
        for dotted, name in self.unresolved.items():
            if dotted == path or dotted.startswith((path + ".", path + "[")):
                return f" (set ${name}, or --set {dotted}=...)"
        return ""


_OPTION = re.compile(r"\s*['\"]?([A-Za-z_]\w*)")


def _data_issues(
    resolved: list[tuple[Path_, str, ComponentConfig]],
    registry: Registry,
    defaulted: Mapping[Path_, str],
    cache: dict[str, list[str]],
) -> list[tuple[Path_, str, Path_]]:
    """Problems with the data and files the validated components name: (path, message, path of the option)."""
    issues = []
    for path, kind, config in resolved:
        key = f"{kind}:{config!r}"
        if key not in cache:
            cls = registry.get(kind, config.name).cls
            try:
                cache[key] = [str(line) for line in cls.check(config)]
            except UserError as error:  # a check may also raise its one line
                cache[key] = [str(error)]
            except Exception as error:  # noqa: BLE001 - a plugin's check must not hide the other problems
                cache[key] = [f"check() of {kind} {config.name!r} failed: {type(error).__name__}: {error}"]
        lines = list(cache[key])
        if kind == "backbone" and isinstance(config, BackboneConfig) and config.weights:
            lines += [] if os.path.isfile(config.weights) else [f"weights {config.weights!r}: no such file"]
        if not lines:
            continue
        for line in lines:
            match = _OPTION.match(line)
            option = match.group(1) if match and match.group(1) in type(config).model_fields else None
            at = (*path, option) if option else path
            if at not in defaulted:  # the message may name a defaulted value without starting with its option
                at = next((p for p in defaulted if p[: len(path)] == path and _value_in(config, p, path, line)), at)
            hint = f" (set ${defaulted[at]}, or --set {format_loc(at)}=...)" if at in defaulted else ""
            issues.append((path, line.strip() + hint, at))
    return issues


def _value_in(config: ComponentConfig, path: Path_, prefix: Path_, line: str) -> bool:
    value: Any = config
    for part in path[len(prefix) :]:
        if isinstance(part, int):
            value = value[part] if isinstance(value, (list, tuple)) and part < len(value) else None
        else:
            value = getattr(value, str(part), None)
    return value is not None and str(value) in line


def _where(indices: list[int], grid: dict[str, list[Any]], combos: list[tuple[int, ...]]) -> str:
    """Which sweep points a problem belongs to, in words: a sub-grid by its values, else point by point."""
    keys = list(grid)
    chosen = [combos[i] for i in indices]
    values = [sorted({combo[k] for combo in chosen}) for k in range(len(keys))]
    size = 1
    for options in values:
        size *= len(options)
    if size == len(chosen):
        parts = [
            f"{keys[k]}={' or '.join(repr(grid[keys[k]][j]) for j in values[k])}"
            for k in range(len(keys))
            if len(values[k]) < len(grid[keys[k]])
        ]
        return "at sweep points with " + ", ".join(parts)
    points = [
        "(" + ", ".join(f"{keys[k]}={grid[keys[k]][combo[k]]!r}" for k in range(len(keys))) + ")" for combo in chosen
    ]
    return "at sweep points " + "; ".join(points)


def load_plan(
    path: str | os.PathLike[str],
    registry: Registry,
    overrides: Sequence[str] = (),
    allow_python: bool = False,
    check_data: bool = True,
) -> Plan:
    """Load and validate ``path`` and every sweep point before any work starts; check the data by default.

    Every problem (placeholders, the sweep grid, the schema, each component's options, datasets nested in
    evaluators, missing data) is raised together as one ConfigProblems; a problem common to every sweep point
    is reported once. ``check_data=False`` checks only the schema.
    """
    loaded = load_config(path, overrides, allow_python)
    raw = loaded.raw
    grid_issues = sweep_issues(raw)
    problems = loaded.problems + [Problem(m, format_loc(p), _lookup(loaded.origins, p)) for p, m in grid_issues]
    grid: dict[str, list[Any]] = {} if grid_issues else (raw.get("sweep") or {})
    base = {key: value for key, value in raw.items() if key != "sweep"}
    key_paths = {key: set_path(copy.deepcopy(base), key, values[0]) for key, values in grid.items()}
    origins = {**loaded.origins, **{at: _lookup(loaded.origins, ("sweep", key)) for key, at in key_paths.items()}}
    combos = list(itertools.product(*(range(len(values)) for values in grid.values())))
    found: dict[tuple[Path_, str, Path_], list[int]] = {}  # (path, message, option path) -> sweep point numbers
    points: list[tuple[str, dict[str, Any], ExperimentConfig]] = []
    cache: dict[str, list[str]] = {}
    for number, combo in enumerate(combos):
        config = copy.deepcopy(base) if grid else base
        point = {key: grid[key][index] for key, index in zip(grid, combo)}
        for key, value in point.items():
            set_path(config, key_paths[key], copy.deepcopy(value))
        experiment, issues, resolved = check_experiment(config, registry)
        found_here = [(p, m, p) for p, m in issues]
        if check_data:
            found_here += _data_issues(resolved, registry, _defaults_at(loaded, key_paths, combo), cache)
        for issue in dict.fromkeys(found_here):
            if not any(issue[2][: len(at)] == at for at in loaded.unsubstituted):  # consequences of those
                found.setdefault(issue, []).append(number)
        if experiment is not None and not found_here:
            points.append((point_label(point) if grid else "", point, experiment))
    for (issue_path, message, at), numbers in found.items():
        suffix = "" if len(numbers) == len(combos) else f" ({_where(numbers, grid, combos)})"
        problems.append(Problem(message + suffix, format_loc(issue_path), _lookup(origins, at)))
    if problems:
        raise ConfigProblems(problems)
    unresolved: dict[Path_, str] = {}
    for combo in combos:
        unresolved.update(_defaults_at(loaded, key_paths, combo))
    return Plan(str(path), raw, points, {format_loc(at): name for at, name in unresolved.items()})


def _defaults_at(loaded: LoadedConfig, key_paths: dict[str, Path_], combo: tuple[int, ...]) -> dict[Path_, str]:
    """Placeholder defaults in use at one sweep point (by config path): the config's, and the swept values'."""
    defaulted = {at: name for at, name in loaded.defaulted.items() if at[:1] != ("sweep",)}
    for (key, at), index in zip(key_paths.items(), combo):
        name = loaded.defaulted.get(("sweep", key, index))
        if name:
            defaulted[at] = name
    return defaulted


__all__ = [
    "ALLOW_PYTHON_ENV",
    "ConfigError",
    "LoadedConfig",
    "Plan",
    "load_config",
    "load_plan",
    "load_raw",
    "set_path",
]
