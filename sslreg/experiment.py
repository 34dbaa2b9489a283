"""The experiment schema, and its validation against the chosen components' own option models."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from sslreg.component import ComponentConfig, ComponentSpec
from sslreg.errors import ConfigError
from sslreg.registry import Registry, UnknownComponent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleConfig(_Strict):
    """How pretraining runs: optimisation, checkpoints and the device."""

    epochs: int = Field(1, ge=1, description="Passes over the training data.")
    max_iters: int | None = Field(None, ge=1, description="Stop after this many iterations (overrides epochs).")
    batch_size: int = Field(32, ge=1, description="Global batch size (split across DDP processes).")
    lr: float = Field(0.01, gt=0, description="Base learning rate of SGD.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(1e-4, ge=0, description="SGD weight decay.")
    lr_steps: list[int] = Field(default_factory=list, description="Epochs at which the lr is multiplied by lr_gamma.")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="Factor of each lr step.")
    warmup_iters: int = Field(0, ge=0, description="Linear lr warm-up iterations.")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    checkpoint_interval: int = Field(1, ge=1, description="Save a checkpoint every this many epochs.")
    keep_checkpoints: int = Field(
        2, ge=1, description="How many recent checkpoints to keep (the final one is kept too)."
    )
    log_interval: int = Field(10, ge=1, description="Log (and write TensorBoard scalars) every this many iterations.")
    amp: bool = Field(True, description="Mixed precision on GPU (ignored on CPU).")
    device: str = Field("auto", description="'auto' (GPU when present), 'cpu', 'cuda' or 'cuda:N'.")
    deterministic: bool = Field(True, description="Deterministic algorithms (same seed, same result on CPU).")


class PretrainConfig(_Strict):
    """Which pretext task trains which trunk on which data, and how."""

    pretext: SerializeAsAny[ComponentSpec]
    backbone: SerializeAsAny[ComponentSpec]
    data: SerializeAsAny[ComponentSpec]
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)


class ExperimentConfig(_Strict):
    """One experiment: pretrain, then evaluate layer by layer; ``sweep`` makes a grid of experiments."""

    name: str = Field("experiment", description="Name of the run (folder under runs/ by default).")
    seed: int = Field(0, description="Seed of everything random; same seed, same result on CPU.")
    work_dir: str | None = Field(None, description="Run folder (default runs/<name>).")
    pretrain: PretrainConfig | None = None
    evaluate: list[SerializeAsAny[ComponentSpec]] = Field(default_factory=list)
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="Dotted config path -> values; every combination is one run."
    )
    backbone: SerializeAsAny[ComponentSpec] | None = Field(
        None, description="Trunk to evaluate when there is no pretrain section (e.g. random init or local weights)."
    )

    @property
    def trunk_spec(self) -> ComponentConfig | ComponentSpec | None:
        """The trunk the evaluators receive: the pretrained one, else the ``backbone`` section."""
        return self.pretrain.backbone if self.pretrain else self.backbone


COMPONENT_PATHS: dict[tuple[str, ...], str] = {
    ("pretrain", "pretext"): "pretext",
    ("pretrain", "backbone"): "backbone",
    ("pretrain", "data"): "dataset",
    ("backbone",): "backbone",
}


def format_loc(loc: tuple[Any, ...] | list[Any]) -> str:
    """('evaluate', 0, 'layers') -> 'evaluate[0].layers'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last element of ``loc``, for did-you-mean on unknown keys."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _problems(error: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...]) -> list[str]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        path = format_loc(prefix + loc)
        if item["type"] == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            known = list(owner.model_fields) if owner else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            problems.append(f"{path}: unknown option{hint}")
        elif item["type"] == "missing":
            problems.append(f"{path}: required option is missing")
        else:
            problems.append(f"{path}: {item['msg']} (got {item.get('input')!r})")
    return problems


def _validate_component(
    registry: Registry, kind: str, raw: Any, prefix: tuple[Any, ...], problems: list[str]
) -> ComponentConfig | None:
    """Validate one component's options against its own Config; append problems, return the config or None."""
    path = format_loc(prefix)
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a mapping with at least 'name' (got {raw!r})")
        return None
    if "name" not in raw:
        problems.append(f"{path}.name: required option is missing (which {kind}? see `sslreg list {kind}`)")
        return None
    try:
        entry = registry.get(kind, raw["name"])
    except UnknownComponent as error:
        problems.append(f"{path}.name: {error}")
        return None
    try:
        config = entry.cls.Config.model_validate(raw)
    except ValidationError as error:
        problems.extend(_problems(error, entry.cls.Config, prefix))
        return None
    for field_name, value in config:
        if isinstance(value, ComponentSpec):  # a dataset named inside this component (e.g. train/test data)
            _validate_component(registry, "dataset", value.model_dump(), prefix + (field_name,), problems)
    return config


def _check_layers(registry: Registry, experiment: ExperimentConfig, problems: list[str]) -> None:
    """Evaluator layers must exist in the trunk (when the trunk class declares its layers)."""
    trunk = experiment.trunk_spec
    if trunk is None:
        return
    try:
        layer_names = registry.get("backbone", trunk.name).cls.layer_names
    except UnknownComponent:
        return
    for index, evaluator in enumerate(experiment.evaluate):
        layers = getattr(evaluator, "layers", "all")
        if layer_names and isinstance(layers, list):
            for layer in layers:
                if layer not in layer_names:
                    close = difflib.get_close_matches(layer, layer_names, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else f"; {trunk.name} has {list(layer_names)}"
                    problems.append(f"evaluate[{index}].layers: unknown layer {layer!r}{hint}")


def validate_experiment(raw: Any, registry: Registry, source: str = "") -> ExperimentConfig:
    """Validate a whole experiment dict before any work starts; raise ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError([f"expected a mapping at the top level (got {type(raw).__name__})"], source)
    problems: list[str] = []
    try:
        experiment = ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        problems.extend(_problems(error, ExperimentConfig, ()))
        experiment = None
    resolved: dict[tuple[str, ...], ComponentConfig | None] = {}
    for path, kind in COMPONENT_PATHS.items():
        node: Any = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            resolved[path] = _validate_component(registry, kind, node, path, problems)
    raw_evaluators = raw.get("evaluate") if isinstance(raw.get("evaluate"), list) else []
    evaluators = [
        _validate_component(registry, "evaluator", item, ("evaluate", index), problems)
        for index, item in enumerate(raw_evaluators)
    ]
    if experiment is None or problems:
        raise ConfigError(problems, source)
    if experiment.pretrain is not None:
        experiment.pretrain = experiment.pretrain.model_copy(
            update={path[1]: resolved[path] for path in resolved if path[0] == "pretrain"}
        )
    if ("backbone",) in resolved:
        experiment.backbone = resolved[("backbone",)]
    experiment.evaluate = evaluators
    if experiment.pretrain is None and experiment.backbone is None and experiment.evaluate:
        problems.append("backbone: required when there is no pretrain section (the trunk to evaluate)")
    if experiment.pretrain is None and not experiment.evaluate:
        problems.append("pretrain: nothing to do: give a pretrain section, an evaluate list, or both")
    _check_layers(registry, experiment, problems)
    if problems:
        raise ConfigError(problems, source)
    return experiment


def set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.0.c`` in a nested dict/list structure, creating dicts on the way."""
    parts = dotted.split(".")
    node: Any = raw
    for part, following in zip(parts[:-1], parts[1:]):
        key: Any = int(part) if isinstance(node, list) else part
        if isinstance(node, dict) and part not in node:
            node[part] = [] if following.isdigit() else {}
        node = node[key]
    last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    node[last] = value


def sweep_points(raw: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every combination of the ``sweep`` grid as (point {path: value}, full config dict without ``sweep``)."""
    import copy

    grid = raw.get("sweep") or {}
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)):
        point = dict(zip(keys, values))
        config = copy.deepcopy({k: v for k, v in raw.items() if k != "sweep"})
        for key, value in point.items():
            set_path(config, key, value)
        yield point, config


def point_label(point: dict[str, Any]) -> str:
    """A file-system-safe name for one sweep point, e.g. 'subset=100_name=resnet18'."""
    parts = [
        f"{key.split('.')[-1] if key.split('.')[-1] != 'name' else key.split('.')[-2]}={value}"
        for key, value in point.items()
    ]
    return "_".join(parts).replace("/", "-").replace(" ", "") or "base"
