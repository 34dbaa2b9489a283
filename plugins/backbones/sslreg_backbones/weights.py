"""Where a trunk's weights come from: a seeded random init, or a local file (never a download).

A file is either an sslreg pretraining checkpoint (``{"state_dict" | "model": {...}}`` whose trunk
keys carry the ``trunk.`` prefix) or a plain state dict (e.g. torchvision's). Every trunk loads
through :func:`load_weights`, so every trunk reports missing, unexpected and head keys the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sslreg.files import load_weights_only

logger = logging.getLogger("sslreg.backbones")

#: Prefix under which sslreg checkpoints keep the trunk (sslreg.PretextModel.trunk).
TRUNK_PREFIX = "trunk."
#: Prefix added by DistributedDataParallel / DataParallel wrappers.
WRAPPER_PREFIX = "module."


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block under ``torch.manual_seed(seed)`` without touching the caller's RNG; None: the current RNG."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class LoadReport:
    """What a weights file gave a trunk: tensors loaded, and the keys that did not map."""

    path: str
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored_head: list[str] = field(default_factory=list)


def read_file(path: str | Path) -> object:
    """``torch.load`` with ``weights_only=True`` on the CPU; a clear error for a missing or unsafe file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights: file {str(path)!r} not found (weights are never downloaded)")
    try:
        return load_weights_only(path)
    except Exception as error:  # noqa: BLE001 - turned into one readable line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"weights: cannot read {str(path)!r} with torch.load(weights_only=True): {first}") from None


def trunk_state_dict(content: object, path: str = "") -> tuple[dict[str, torch.Tensor], list[str], str]:
    """Split a loaded file into (trunk tensors, keys of other parts such as a pretext head, source kind)."""
    if not isinstance(content, Mapping):
        raise ValueError(f"weights: {path!r} holds a {type(content).__name__}, not a checkpoint or state dict")
    source = "state dict"
    for key in ("state_dict", "model"):
        if isinstance(content.get(key), Mapping):
            content, source = content[key], "sslreg checkpoint"
            break
    tensors = {str(k): v for k, v in content.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith(WRAPPER_PREFIX) for k in tensors):
        tensors = {k[len(WRAPPER_PREFIX) :]: v for k, v in tensors.items()}
    if not any(k.startswith(TRUNK_PREFIX) for k in tensors):
        return tensors, [], source
    trunk = {k[len(TRUNK_PREFIX) :]: v for k, v in tensors.items() if k.startswith(TRUNK_PREFIX)}
    others = sorted(k for k in tensors if not k.startswith(TRUNK_PREFIX))
    return trunk, others, source


def _short_list(keys: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_weights(
    model: nn.Module,
    path: str | Path,
    *,
    name: str = "backbone",
    head_prefixes: Sequence[str] = (),
    foreign: Mapping[str, str] | None = None,
) -> LoadReport:
    """Load ``path`` into ``model`` by key; warn about missing/unexpected keys, fail if nothing matched.

    ``head_prefixes`` name classifier keys that are dropped quietly (torchvision's ``fc.``);
    ``foreign`` maps a marker key to the message for a known layout that cannot map onto ``model``.
    """
    tensors, others, source = trunk_state_dict(read_file(path), str(path))
    report = LoadReport(path=str(path), source=source, ignored_head=list(others))
    own = model.state_dict()
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs trunk {tuple(own[k].shape)}"
        for k, v in tensors.items()
        if k in own and v.shape != own[k].shape
    ]
    if mismatched:
        raise ValueError(f"{name}: weights {str(path)!r} do not fit this trunk: {_short_list(mismatched, 4)}")
    report.loaded = [k for k in own if k in tensors]
    report.missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
    for key in tensors:
        if key not in own:
            head = any(key.startswith(prefix) for prefix in head_prefixes)
            (report.ignored_head if head else report.unexpected).append(key)
    if not report.loaded:
        for marker, message in (foreign or {}).items():
            if marker in tensors:
                raise ValueError(f"{name}: weights {str(path)!r}: {message}")
        raise ValueError(
            f"{name}: no key of {str(path)!r} ({source}) matches this trunk; file has "
            f"{_short_list(sorted(tensors), 4) or 'no tensors'}, trunk expects {_short_list(list(own), 4)}"
        )
    model.load_state_dict({k: tensors[k] for k in report.loaded}, strict=False)
    if report.missing:
        logger.warning(
            "%s: weights %s lack %d key(s), left at init: %s",
            name,
            path,
            len(report.missing),
            _short_list(report.missing),
        )
    if report.unexpected:
        logger.warning(
            "%s: weights %s have %d unexpected key(s), not used: %s",
            name,
            path,
            len(report.unexpected),
            _short_list(report.unexpected),
        )
    logger.info(
        "%s: loaded %d tensors from %s (%s)%s",
        name,
        len(report.loaded),
        path,
        source,
        f"; ignored head keys: {_short_list(report.ignored_head)}" if report.ignored_head else "",
    )
    return report
