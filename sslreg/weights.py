"""Trunk weights from a local file, for any registered trunk: read weights-only, map the keys, load, report.

A file is an sslreg ``trunk.pth`` or pretraining checkpoint (trunk keys under ``trunk.``), a plain state dict
(torchvision's), or a checkpoint of another self-supervised code base: the state dict may sit under
``state_dict``/``model``/``teacher``/... and its keys may carry a prefix such as ``module.encoder_q.``,
``module.``, ``backbone.`` or ``encoder.``. The prefix that maps the most keys onto the trunk is used and
reported. Tensors of the trunk that the file does not hold are an error (never a silently half-random trunk);
file tensors the trunk has no place for are reported (a classifier head quietly, anything else with a warning).
Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sslreg.errors import UserError
from sslreg.files import load_weights_only

logger = logging.getLogger("sslreg.weights")

#: Keys under which checkpoints of common code bases nest their state dict, tried in this order.
NESTED_KEYS = ("state_dict", "model", "teacher", "student", "network", "net")
#: Key prefixes of common layouts (DDP, MoCo's query encoder, DINO/BYOL backbones, sslreg's trunk).
KNOWN_PREFIXES = (
    "trunk.",
    "module.trunk.",
    "module.encoder_q.",
    "encoder_q.",
    "module.backbone.",
    "backbone.",
    "module.encoder.",
    "encoder.",
    "module.model.",
    "model.",
    "module.",
)


@dataclass
class LoadReport:
    """What a weights file gave a trunk: the prefix used, tensors loaded, and the keys that did not map."""

    path: str
    nested_under: str = ""
    prefix: str = ""
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored_head: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def mapping(self) -> str:
        """The key mapping in one phrase, e.g. "'module.encoder_q.<key>' under 'state_dict'"."""
        where = f" under {self.nested_under!r}" if self.nested_under else ""
        return f"'{self.prefix}<key>'{where}"


def short_list(keys: Sequence[str], limit: int = 6) -> str:
    """The first ``limit`` keys, and how many there are in all."""
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def read_weights(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` of a local file; a missing or unreadable file is one clear line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights: file {str(path)!r} not found (weights are never downloaded)")
    try:
        return load_weights_only(path)
    except Exception as error:  # noqa: BLE001 - unpickling raises many types; the user needs one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"weights: cannot read {str(path)!r} with torch.load(weights_only=True): {first}") from None


def _state_dict(content: Any, path: str) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a loaded file and the key they were nested under ('' for a plain state dict)."""
    if not isinstance(content, Mapping):
        raise UserError(f"weights: {path!r} holds a {type(content).__name__}, not a checkpoint or state dict")
    for key in NESTED_KEYS:
        if isinstance(content.get(key), Mapping):
            tensors = {str(k): v for k, v in content[key].items() if isinstance(v, torch.Tensor)}
            if tensors:
                return tensors, key
    return {str(k): v for k, v in content.items() if isinstance(v, torch.Tensor)}, ""


def _best_prefix(tensors: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> str:
    """The prefix (of the known ones, or none) whose stripping maps the most file keys onto the trunk's keys."""
    best, best_count = "", sum(key in own for key in tensors)
    for prefix in KNOWN_PREFIXES:
        count = sum(key.startswith(prefix) and key[len(prefix) :] in own for key in tensors)
        if count > best_count:
            best, best_count = prefix, count
    return best


def load_trunk_weights(trunk: nn.Module, path: str | Path, name: str = "") -> LoadReport:
    """Load ``path`` into ``trunk`` by key (strict on the trunk's side); return what was mapped.

    ``trunk`` may declare ``head_prefixes`` (classifier keys a file may carry, dropped quietly) and
    ``foreign_layouts`` (marker key -> why a known layout cannot map onto it).
    """
    name = name or getattr(trunk, "name", "") or type(trunk).__name__
    content = read_weights(path)
    tensors, nested = _state_dict(content, str(path))
    report = LoadReport(path=str(path), nested_under=nested)
    if isinstance(content, Mapping) and isinstance(content.get("meta"), Mapping):
        report.meta = dict(content["meta"])
    own = trunk.state_dict()
    report.prefix = _best_prefix(tensors, own)
    mapped = {key[len(report.prefix) :]: value for key, value in tensors.items() if key.startswith(report.prefix)}
    mapped = {key: value for key, value in mapped.items() if key in own}
    if not mapped:
        for marker, message in getattr(trunk, "foreign_layouts", {}).items():
            if marker in tensors:
                raise UserError(f"{name}: weights {str(path)!r}: {message}")
        raise UserError(
            f"{name}: no key of {str(path)!r} matches this trunk; the file has {short_list(sorted(tensors), 4)},"
            f" the trunk expects {short_list(list(own), 4)}"
        )
    mismatched = [
        f"{key}: file {tuple(value.shape)} vs trunk {tuple(own[key].shape)}"
        for key, value in mapped.items()
        if value.shape != own[key].shape
    ]
    if mismatched:
        raise UserError(f"{name}: weights {str(path)!r} do not fit this trunk: {short_list(mismatched, 3)}")
    report.loaded = [key for key in own if key in mapped]
    report.missing = [key for key in own if key not in mapped and not key.endswith("num_batches_tracked")]
    if report.missing:
        raise UserError(
            f"{name}: weights {str(path)!r} ({report.mapping}) lack {len(report.missing)} of the trunk's tensors:"
            f" {short_list(report.missing)}"
        )
    head_prefixes = tuple(getattr(trunk, "head_prefixes", ()))
    used = {report.prefix + key for key in mapped}
    for key in tensors:
        if key in used:
            continue
        stripped = key[len(report.prefix) :] if key.startswith(report.prefix) else key
        is_head = not key.startswith(report.prefix) or stripped.startswith(head_prefixes)
        (report.ignored_head if is_head else report.unexpected).append(key)
    trunk.load_state_dict(mapped, strict=False)
    if report.unexpected:
        logger.warning(
            "%s: weights %s have %d tensor(s) this trunk has no place for, not used: %s",
            name,
            path,
            len(report.unexpected),
            short_list(report.unexpected),
        )
    logger.info("%s: loaded %d tensors from %s as %s", name, len(report.loaded), path, report.mapping)
    return report


__all__ = ["KNOWN_PREFIXES", "LoadReport", "load_trunk_weights", "read_weights"]
