"""The experiment schema, and its validation against the chosen components' own option models, in one pass.

``check_experiment`` finds every problem of one config dict at once (the experiment's own options, unknown
component names, each component's options, datasets named inside an evaluator's options at any depth) and
returns an :class:`ExperimentConfig` whose component sections are the components' own validated Config
instances. Sweeps, dotted paths (``evaluate.0.layers`` or ``evaluate[0].layers``) and run-folder labels of
sweep points live here too.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, model_validator

from sslreg.backbone import BackboneConfig
from sslreg.component import ComponentConfig, ComponentSpec
from sslreg.dataset import DatasetConfig, DataSpec
from sslreg.errors import ConfigError
from sslreg.evaluator import EvaluatorConfig
from sslreg.pretext import PretextConfig
from sslreg.problems import ConfigProblems, Problem, describe_type, format_loc
from sslreg.reference import Reference
from sslreg.registry import KINDS, Registry, UnknownComponent

#: Seeds go to numpy and torch; both accept 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1
#: A sweep is a grid of full runs; more points than this is a mistake, not a plan.
MAX_SWEEP_POINTS = 1000
#: Run folders of sweep points: at most this many characters.
MAX_LABEL = 100

Path_ = tuple[Any, ...]  # a config path: str keys and int list indices
Issue = tuple[Path_, str]  # (path, message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleConfig(_Strict):
    """How pretraining runs: optimisation, checkpoints and the device."""

    epochs: int = Field(1, ge=1, description="Passes over the training data.")
    max_iters: int | None = Field(None, ge=1, description="Stop after this many iterations (overrides epochs).")
    batch_size: int = Field(32, ge=1, description="Global batch size (split across DDP processes).")
    optimizer: Literal["sgd", "adamw", "lars"] = Field(
        "sgd", description="'sgd', 'adamw' (torch's) or 'lars' (timm's LARS; needs timm: pip install 'sslreg[lars]')."
    )
    lr: float = Field(0.01, gt=0, description="Base learning rate.")
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum of SGD and LARS.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW's (beta1, beta2).")
    weight_decay: float = Field(1e-4, ge=0, description="Weight decay (decoupled for AdamW).")
    decay_norm_and_bias: bool = Field(
        True, description="Apply weight decay to normalisation layers and biases too (False: exclude them)."
    )
    lr_schedule: Literal["step", "cosine"] = Field(
        "step", description="'step': times lr_gamma at each of lr_steps; 'cosine': down to min_lr by the last step."
    )
    lr_steps: list[int] = Field(default_factory=list, description="Epochs at which the lr is multiplied by lr_gamma.")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="Factor of each lr step.")
    min_lr: float = Field(0.0, ge=0, description="Final learning rate of the cosine schedule.")
    warmup_iters: int = Field(0, ge=0, description="Linear lr warm-up iterations.")
    sync_bn: bool = Field(False, description="Under DDP, turn BatchNorm layers into SyncBatchNorm (GPU only).")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    checkpoint_interval: int = Field(1, ge=1, description="Save a checkpoint every this many epochs.")
    keep_checkpoints: int = Field(
        2, ge=1, description="How many recent checkpoints to keep (the final one is kept too)."
    )
    log_interval: int = Field(10, ge=1, description="Log (and write TensorBoard scalars) every this many iterations.")
    amp: bool = Field(True, description="Mixed precision on GPU (ignored on CPU).")
    device: str = Field("auto", description="'auto' (GPU when present), 'cpu', 'cuda' or 'cuda:N'.")
    deterministic: bool = Field(True, description="Deterministic algorithms (same seed, same result on CPU).")

    @model_validator(mode="after")
    def _check_schedule(self) -> ScheduleConfig:
        if self.lr_steps and self.lr_schedule != "step":
            raise ValueError(f"lr_steps apply to lr_schedule 'step', not {self.lr_schedule!r}; remove them")
        if not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas: each must be in [0, 1), got {list(self.betas)}")
        return self


class PretrainConfig(_Strict):
    """Which pretext task trains which trunk on which data, and how.

    After validation each component field holds that component's own validated Config (e.g. JigsawConfig),
    so every option is an attribute with its default filled in.
    """

    pretext: SerializeAsAny[PretextConfig] = Field(description="The pretext task (a registered pretext name).")
    backbone: SerializeAsAny[BackboneConfig] = Field(description="The trunk to train (a registered backbone).")
    data: SerializeAsAny[DatasetConfig] = Field(description="Unlabeled training images (a registered dataset).")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Optimisation and checkpoints.")


class ExperimentConfig(_Strict):
    """One experiment: pretrain, then evaluate layer by layer; ``sweep`` makes a grid of experiments.

    Built by :func:`check_experiment` (never from raw dicts directly): ``pretrain.pretext/backbone/data``,
    ``backbone`` and each ``evaluate[i]`` are the components' own validated Config instances, and datasets
    named inside an evaluator's options (``train:``, ``test:``) are the dataset's own Config too.
    """

    name: str = Field("experiment", min_length=1, description="Name of the run (folder under runs/ by default).")
    seed: int = Field(
        0, ge=0, le=SEED_MAX, description="Seed of everything random, 0..2**32-1 (what numpy and torch accept)."
    )
    work_dir: str | None = Field(None, description="Run folder (default runs/<name>).")
    pretrain: PretrainConfig | None = Field(None, description="Pretraining; omit it to evaluate a given trunk.")
    evaluate: list[SerializeAsAny[EvaluatorConfig]] = Field(
        default_factory=list, description="Evaluators, each with its options (registered evaluator names)."
    )
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="Dotted config path -> values; every combination is one run."
    )
    backbone: SerializeAsAny[BackboneConfig] | None = Field(
        None, description="Trunk to evaluate when there is no pretrain section (e.g. random init or local weights)."
    )
    baseline: Literal["random"] | None = Field(
        None,
        description="'random': also run every evaluator on the same trunk architecture randomly initialised (same"
        " seed and input contract, as its own stages); tables add 'random init' and 'difference' rows.",
    )
    reference: list[Reference] = Field(
        default_factory=list,
        description="Published numbers to print beside ours: a list of {source, label, when, scores: evaluator ->"
        " metric -> layer -> number}; tables add 'paper' and 'difference (ours - paper)' rows.",
    )

    @property
    def trunk_spec(self) -> BackboneConfig | None:
        """The trunk the evaluators receive: the pretrained one, else the ``backbone`` section."""
        return self.pretrain.backbone if self.pretrain else self.backbone


#: Where the experiment names components directly, and of which kind.
COMPONENT_PATHS: dict[Path_, str] = {
    ("pretrain", "pretext"): "pretext",
    ("pretrain", "backbone"): "backbone",
    ("pretrain", "data"): "dataset",
    ("backbone",): "backbone",
}


# ---------------------------------------------------------------------------------------------- dotted paths


class PathError(ValueError):
    """A dotted path that is malformed or does not fit the config (a list index out of range, ...)."""


_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def parse_path(dotted: str) -> Path_:
    """'evaluate.0.layers' or 'evaluate[0].layers' -> ('evaluate', '0', 'layers') / ('evaluate', 0, 'layers').

    Digits after a dot stay text (a mapping may have such a key); set_path reads them as an index in a list.
    """
    parts: list[Any] = []
    for segment in dotted.split("."):
        match = _SEGMENT.fullmatch(segment)
        if not match:
            raise PathError(
                f"malformed path {dotted!r}: use dotted names and list indices, e.g. evaluate.0.layers"
                " or evaluate[0].layers"
            )
        parts.append(match.group(1))
        parts.extend(int(index) for index in re.findall(r"\d+", match.group(2)))
    return tuple(parts)


def _is_index(part: Any) -> bool:
    return isinstance(part, int) or (part.isascii() and part.isdigit())


def set_path(raw: dict[str, Any], dotted: str | Path_, value: Any) -> Path_:
    """Set ``a.b.0.c`` in nested dicts and lists, creating missing mapping keys; return the path as walked.

    Raises PathError naming the part that does not fit: an index out of range, a key into a list, a key into
    a scalar.
    """
    parts = parse_path(dotted) if isinstance(dotted, str) else tuple(dotted)
    node: Any = raw
    walked: list[Any] = []
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        here = format_loc(walked) or "the config"
        if isinstance(node, list):
            if not _is_index(part):
                raise PathError(f"{here} is a list: use an index 0..{len(node) - 1}, not {part!r}")
            index = int(part)
            if index >= len(node):
                size = f"{len(node)} item" + ("" if len(node) == 1 else "s")
                raise PathError(f"index {index} is out of range: {here} has {size}")
            key: Any = index
        elif isinstance(node, dict):
            key = str(part)
            if not last and key not in node:
                following = parts[position + 1]
                if _is_index(following):
                    raise PathError(f"{format_loc([*walked, key])} is not in the config, so it has no item {following}")
                node[key] = {}
        else:
            raise PathError(f"{here} is {describe_type(node)}, not a mapping or a list")
        walked.append(key)
        if last:
            node[key] = value
        else:
            node = node[key]
    return tuple(walked)


# ------------------------------------------------------------------------------------------- pydantic errors


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _step(annotation: Any, part: Any) -> Any:
    """The type of ``part`` (a field name, list index or mapping key) inside a value of type ``annotation``."""
    annotation = _unwrap(annotation)
    if _is_model(annotation):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field else None
    origin = get_origin(annotation)
    args = [arg for arg in get_args(annotation) if arg is not Ellipsis]
    if origin in (Union, types.UnionType):
        return next((found for arm in args if (found := _step(arm, part)) is not None), None)
    if origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int) and args:
        return args[min(part, len(args) - 1)]
    if origin in (dict, Mapping) and args:
        return args[-1]
    return None


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that owns the last element of ``loc``, for did-you-mean on unknown keys."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    annotation = _unwrap(annotation)
    arms = [_unwrap(arm) for arm in get_args(annotation)] if get_origin(annotation) in (Union, types.UnionType) else []
    return next((arm for arm in [annotation, *arms] if _is_model(arm)), None)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pydantic_issues(error: ValidationError, model: type[BaseModel], prefix: Path_) -> list[Issue]:
    issues: list[Issue] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        path = prefix + loc
        if item["type"] == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            known = [name for name in owner.model_fields] if owner else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            issues.append((path, f"unknown option{hint}"))
        elif item["type"] == "missing":
            issues.append((path, "required option is missing"))
        else:
            message = item["msg"].removeprefix("Value error, ")  # a validator's own sentence, without pydantic's tag
            issues.append((path, f"{message} (got {_short(item.get('input'))})"))
    return issues


# ------------------------------------------------------------------------------------------------ components


class _Checker:
    """Validates components of one config against the registry; gathers issues and resolved components."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.issues: list[Issue] = []
        #: (path, kind, validated Config) of every component that validated, nested datasets included.
        self.resolved: list[tuple[Path_, str, ComponentConfig]] = []

    def component(self, kind: str | None, raw: Any, path: Path_) -> ComponentConfig | None:
        """Validate one component's options against its own Config (and the datasets named inside them)."""
        if isinstance(raw, BaseModel):
            raw = raw.model_dump()
        if not isinstance(raw, dict):
            self.issues.append((path, f"expected a mapping with at least 'name' (got {_short(raw)})"))
            return None
        name = raw.get("name")
        if name is None:
            which = f" (which {kind}? see `sslreg list {kind}`)" if kind else ""
            self.issues.append(((*path, "name"), f"required option is missing{which}"))
            return None
        if not isinstance(name, str):
            self.issues.append(((*path, "name"), f"expected a component name (got {_short(name)})"))
            return None
        kind = kind or self._kind_of(name, path)
        if kind is None:
            return None
        try:
            entry = self.registry.get(kind, name)
        except UnknownComponent as error:
            self.issues.append(((*path, "name"), str(error)))
            return None
        base = KINDS[kind].Config
        if not issubclass(entry.cls.Config, base):
            self.issues.append(
                ((*path, "name"), f"{kind} {name!r} is broken: its Config must subclass {base.__name__}")
            )
            return None
        try:
            config = entry.cls.Config.model_validate(raw)
        except ValidationError as error:
            self.issues.extend(_pydantic_issues(error, entry.cls.Config, path))
            self._fields(entry.cls.Config, raw, path, resolve=False)
            return None
        config = self._fields(type(config), config, path, resolve=True)
        self.resolved.append((path, kind, config))
        return config

    def _kind_of(self, name: str, path: Path_) -> str | None:
        """The kind of a component named by a plain ComponentSpec field: the one kind that has ``name``."""
        kinds = [entry.kind for entry in self.registry.find(name)]
        if len(kinds) == 1:
            return kinds[0]
        if kinds:
            self.issues.append(((*path, "name"), f"{name!r} is a component of several kinds ({', '.join(kinds)})"))
        else:
            close = self.registry.suggest(name)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            self.issues.append(((*path, "name"), f"unknown component {name!r}{hint}"))
        return None

    def _fields(self, model: type[BaseModel], value: Any, path: Path_, resolve: bool) -> Any:
        """Walk ``model``'s fields in ``value`` (an instance, or the raw dict when it did not validate)."""
        updates = {}
        for name, field in model.model_fields.items():
            if isinstance(value, BaseModel):
                item = getattr(value, name, None)
            elif name in value:
                item = value[name]
            elif field.is_required():
                continue
            else:
                item = field.get_default(call_default_factory=True)
            new = self._walk(field.annotation, item, (*path, name), resolve)
            if new is not item:
                updates[name] = new
        if not updates or not resolve:
            return value
        if isinstance(value, BaseModel):
            return value.model_copy(update=updates)  # no re-validation: a resolved spec is not a DataSpec
        return {**value, **updates}

    def _walk(self, annotation: Any, value: Any, path: Path_, resolve: bool) -> Any:
        """Find component specs (DataSpec, ComponentSpec) under ``annotation`` in ``value``, at any depth."""
        annotation = _unwrap(annotation)
        if value is None:
            return value
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            for arm in get_args(annotation):
                if _fits(_unwrap(arm), value):
                    return self._walk(arm, value, path, resolve)
            return value
        if origin in (list, tuple, set, frozenset, Sequence) and isinstance(value, (list, tuple)):
            args = [arg for arg in get_args(annotation) if arg is not Ellipsis] or [Any]
            items = [
                self._walk(args[min(index, len(args) - 1)], item, (*path, index), resolve)
                for index, item in enumerate(value)
            ]
            changed = any(new is not old for new, old in zip(items, value))
            return type(value)(items) if changed else value
        if origin in (dict, Mapping) and isinstance(value, dict):
            item_type = get_args(annotation)[-1] if get_args(annotation) else Any
            items = {key: self._walk(item_type, item, (*path, key), resolve) for key, item in value.items()}
            changed = any(items[key] is not value[key] for key in value)
            return items if changed else value
        if isinstance(annotation, type) and issubclass(annotation, ComponentSpec):
            if not resolve and not (isinstance(value, dict) and isinstance(value.get("name"), str)):
                return value  # pydantic has reported what is wrong with it
            kind = "dataset" if issubclass(annotation, DataSpec) else None
            config = self.component(kind, value, path)
            return config if (config is not None and resolve) else value
        if _is_model(annotation) and isinstance(value, (BaseModel, dict)):
            return self._fields(annotation, value, path, resolve)
        return value


def _fits(annotation: Any, value: Any) -> bool:
    """Whether a Union arm is the one ``value`` was read as (by shape), for walking nested specs."""
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset, Sequence):
        return isinstance(value, (list, tuple))
    if origin in (dict, Mapping):
        return isinstance(value, dict)
    if _is_model(annotation):
        return isinstance(value, (dict, BaseModel))
    return False


def _standin(kind: str, raw: Any) -> ComponentConfig:
    """A placeholder instance for a component that did not validate, so the experiment's own schema check
    reports only its own problems (the component's are reported already)."""
    name = raw.get("name") if isinstance(raw, dict) else None
    return KINDS[kind].Config.model_construct(name=name if isinstance(name, str) else "?")


def _check_layers(registry: Registry, trunk: ComponentConfig | None, wanted: list[Any], issues: list[Issue]) -> None:
    """Evaluator layers (``wanted[i]`` of ``evaluate[i]``) must exist in the trunk, when its class declares them."""
    if trunk is None:
        return
    try:
        layer_names = registry.get("backbone", trunk.name).cls.layer_names
    except UnknownComponent:
        return
    for index, layers in enumerate(wanted):
        if layer_names and isinstance(layers, list):
            for layer in layers:
                if isinstance(layer, str) and layer not in layer_names:
                    close = difflib.get_close_matches(layer, layer_names, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else f"; {trunk.name} has {list(layer_names)}"
                    issues.append((("evaluate", index, "layers"), f"unknown layer {layer!r}{hint}"))


def _check_comparisons(raw: dict[str, Any], issues: list[Issue]) -> None:
    """``baseline`` needs a trunk that is not random already; ``reference`` names evaluators of ``evaluate``.

    Metrics and layers of a reference are known only once results exist: one that matches no result is named in
    a warning when the tables are written.
    """
    if raw.get("baseline") is not None and raw.get("pretrain") is None:
        backbone = raw.get("backbone")
        if isinstance(backbone, dict) and not backbone.get("weights"):
            issues.append((("baseline",), "the trunk is randomly initialised already (backbone has no weights)"))
    blocks, evaluators = raw.get("reference"), raw.get("evaluate")
    if not isinstance(blocks, list) or not isinstance(evaluators, list):
        return
    names = sorted(
        {
            item["name"].rsplit(":", 1)[-1]
            for item in evaluators
            if isinstance(item, dict) and isinstance(item.get("name"), str)
        }
    )
    for index, block in enumerate(blocks):
        scores = block.get("scores") if isinstance(block, dict) else None
        for evaluator in scores if isinstance(scores, dict) else ():
            if evaluator not in names:
                close = difflib.get_close_matches(str(evaluator), names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (evaluate has {names})"
                issues.append(
                    (("reference", index, "scores", evaluator), f"no evaluator {evaluator!r} in evaluate{hint}")
                )


def check_experiment(
    raw: Any, registry: Registry
) -> tuple[ExperimentConfig | None, list[Issue], list[tuple[Path_, str, ComponentConfig]]]:
    """Every problem of one experiment dict at once; the typed experiment when there is none.

    Returns (experiment or None, issues as (path, message), components that validated as (path, kind,
    Config)); the last lets callers check the data of each dataset even when something else is wrong.
    """
    if not isinstance(raw, dict):
        return None, [((), f"expected a mapping of options at the top level (got {describe_type(raw)})")], []
    checker = _Checker(registry)
    shaped = dict(raw)
    found: dict[Path_, ComponentConfig | None] = {}
    for path, kind in COMPONENT_PATHS.items():
        section = shaped if len(path) == 1 else shaped.get(path[0])
        if not isinstance(section, dict) or path[-1] not in section:
            continue
        found[path] = config = checker.component(kind, section[path[-1]], path)
        if len(path) > 1:  # put instances into a copy of the section, so ``raw`` stays as it was
            shaped[path[0]] = section = dict(section)
        section[path[-1]] = config if config is not None else _standin(kind, section[path[-1]])
    trunk = found.get(("pretrain", "backbone")) if isinstance(raw.get("pretrain"), dict) else found.get(("backbone",))
    evaluators: list[Any] = []
    layers: list[Any] = []  # each evaluator's layers, from its raw options when they did not validate
    if isinstance(raw.get("evaluate"), list):
        for index, item in enumerate(raw["evaluate"]):
            config = checker.component("evaluator", item, ("evaluate", index))
            evaluators.append(config if config is not None else _standin("evaluator", item))
            layers.append(
                config.layers if config is not None else (item.get("layers") if isinstance(item, dict) else None)
            )
        shaped["evaluate"] = evaluators
    issues = checker.issues
    try:
        experiment: ExperimentConfig | None = ExperimentConfig.model_validate(shaped)
    except ValidationError as error:
        issues.extend(_pydantic_issues(error, ExperimentConfig, ()))
        experiment = None
    has_pretrain = raw.get("pretrain") is not None
    if not has_pretrain and raw.get("backbone") is None and raw.get("evaluate"):
        issues.append((("backbone",), "required when there is no pretrain section (the trunk to evaluate)"))
    if not has_pretrain and not raw.get("evaluate"):
        issues.append((("pretrain",), "nothing to do: give a pretrain section, an evaluate list, or both"))
    _check_layers(registry, trunk, layers, issues)
    _check_comparisons(raw, issues)
    issues = list(dict.fromkeys(issues))
    return (experiment if not issues else None), issues, checker.resolved


def validate_experiment(raw: Any, registry: Registry, source: str = "") -> ExperimentConfig:
    """Validate a whole experiment dict before any work starts; raise ConfigError listing every problem."""
    experiment, issues, _ = check_experiment(raw, registry)
    if experiment is None:
        raise ConfigProblems(Problem(message, format_loc(path), source) for path, message in issues)
    return experiment


# ---------------------------------------------------------------------------------------------------- sweeps


def sweep_issues(raw: dict[str, Any]) -> list[Issue]:
    """Problems of the ``sweep`` grid itself: its shape, paths that do not fit the config, size, duplicates."""
    grid = raw.get("sweep")
    if not grid:
        return []
    if not isinstance(grid, dict):
        return [(("sweep",), f"expected a mapping of dotted path -> list of values (got {describe_type(grid)})")]
    issues: list[Issue] = []
    base = {key: value for key, value in raw.items() if key != "sweep"}
    total = 1
    for key, values in grid.items():
        where: Path_ = ("sweep", key)
        if not isinstance(values, list) or not values:
            issues.append((where, f"expected a non-empty list of values (got {_short(values)})"))
            continue
        total *= len(values)
        seen: set[str] = set()
        for value in values:
            text = json.dumps(value, sort_keys=True, default=repr)
            if text in seen:
                issues.append((where, f"{_short(value)} is listed twice (two runs of the same point)"))
            seen.add(text)
        try:
            if parse_path(key)[0] == "sweep":
                raise PathError("a sweep cannot sweep itself")
            set_path(copy.deepcopy(base), key, values[0])
        except PathError as error:
            issues.append((where, str(error)))
    if total > MAX_SWEEP_POINTS:
        issues.append((("sweep",), f"{total:,} points; at most {MAX_SWEEP_POINTS:,} runs per sweep"))
    return issues


def point_label(point: dict[str, Any]) -> str:
    """A unique, readable, file-system-safe folder name for one sweep point, e.g. 'subset=100_resnet18-1a2b3c4d'.

    The readable part (the last key of each path, or the component name) is cut to fit MAX_LABEL characters;
    the 8 hex digits are a hash of the point's exact values, so points that differ only in characters dropped
    here, or beyond the cut, still get their own folder. Stable across runs and machines.
    """
    if not point:
        return "base"
    parts = []
    for key, value in point.items():
        names = key.replace("[", ".").replace("]", "").split(".")
        short = names[-2] if names[-1] == "name" and len(names) > 1 else names[-1]
        parts.append(f"{short}={value}")
    exact = json.dumps([[key, value] for key, value in point.items()], default=repr, ensure_ascii=True)
    digest = hashlib.sha256(exact.encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9._=+-]+", "-", "_".join(parts)).strip(".-")
    readable = readable[: MAX_LABEL - len(digest) - 1].rstrip(".-")
    return f"{readable}-{digest}" if readable else digest


__all__ = [
    "COMPONENT_PATHS",
    "ConfigError",
    "ExperimentConfig",
    "PathError",
    "PretrainConfig",
    "ScheduleConfig",
    "check_experiment",
    "format_loc",
    "parse_path",
    "point_label",
    "set_path",
    "sweep_issues",
    "validate_experiment",
]
