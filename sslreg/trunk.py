"""The one trunk builder: construction with its input channels and seed, weights for any registered trunk, and the
input contract the trunk was trained with. Pretraining, evaluation and every plugin command build trunks here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sslreg.backbone import Backbone, BackboneConfig
from sslreg.component import ComponentConfig
from sslreg.errors import UserError
from sslreg.inputs import InputContract
from sslreg.registry import Registry
from sslreg.weights import LoadReport, load_trunk_weights, read_weights

#: Key of the input contract in the ``meta`` of trunk.pth files and checkpoints.
CONTRACT_KEY = "input_contract"


def contract_of_file(path: str | Path) -> InputContract | None:
    """The input contract recorded in an sslreg weights file's ``meta``, or None (e.g. a torchvision file)."""
    content = read_weights(path)
    meta = content.get("meta") if isinstance(content, dict) else None
    recorded = meta.get(CONTRACT_KEY) if isinstance(meta, dict) else None
    if recorded is None:
        return None
    try:
        return InputContract.model_validate(recorded)
    except ValueError as error:
        raise UserError(f"weights: {str(path)!r} records an invalid input contract: {error}") from None


def build_trunk(
    registry: Registry,
    spec: BackboneConfig | ComponentConfig | dict[str, Any],
    *,
    seed: int,
    contract: InputContract | None = None,
    weights: str | Path | None = None,
) -> Backbone:
    """A registered trunk, initialised from ``seed`` (its own ``seed`` option wins), with weights and contract.

    The contract is, in order: the trunk's ``input`` option, ``contract`` (a pretext task's), the one recorded in
    the weights file, else ImageNet RGB; it fixes ``in_channels``. ``weights`` (e.g. a trained trunk.pth)
    overrides the spec's own ``weights`` option. The load report stays on ``trunk.weights_report``. The caller's
    torch RNG is left as it was.
    """
    config = registry.config("backbone", spec)
    path = weights if weights is not None else getattr(config, "weights", None)
    chosen = getattr(config, "input", None) or contract
    if chosen is None and path:
        chosen = contract_of_file(path)
    chosen = chosen or InputContract()
    config = config.model_copy(update={"in_channels": chosen.channels, "weights": str(path) if path else None})
    own_seed = getattr(config, "seed", None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if own_seed is None else own_seed)
        trunk = registry.build("backbone", config)
    report: LoadReport | None = load_trunk_weights(trunk, path, config.name) if path else None
    trunk.input_contract = chosen
    trunk.weights_report = report
    return trunk


__all__ = ["CONTRACT_KEY", "build_trunk", "contract_of_file"]
