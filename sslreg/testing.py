"""Conformance kit for plugin authors: ``check_plugin(module)`` runs every check that applies to what it registers.

Use it from a plugin's tests::

    from sslreg.testing import check_plugin
    check_plugin(sslreg_myplugin, dataset_options={"my_folder": {"root": str(tmp_path)}},
                 evaluator_options={"my_probe": {"epochs": 2}})

Backbones and pretext tasks are checked with their default options. Datasets and evaluators need options that
make a small, quick fixture (a folder the test wrote, few epochs): pass them by component name; a dataset or
evaluator without options is not run, and ``check_plugin`` warns which ones were left out.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import pickle
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from sslreg.backbone import Backbone, BackboneConfig, PoolSpec
from sslreg.component import ComponentSpec
from sslreg.dataset import DatasetConfig, DatasetSource, DataSpec, Sample
from sslreg.evaluator import EvalContext, EvalResult, Evaluator
from sslreg.plugins import LoadedPlugins, PluginInfo, new_manager, register_module
from sslreg.pretext import PretextModel, PretextTask
from sslreg.registry import KINDS, Entry, Registry


class TinyBackbone(Backbone):
    """Two-layer conv trunk (l1 stride 2, l2 stride 4) for testing pretext tasks and evaluators quickly."""

    name = "tiny"
    layer_names = ("l1", "l2")
    input_size = 32

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__(config or BackboneConfig(name=self.name))
        self.l1 = nn.Sequential(nn.Conv2d(self.config.in_channels, 8, 3, 2, 1), nn.ReLU())
        self.l2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())

    @property
    def layer_channels(self) -> dict[str, int]:
        return {"l1": 8, "l2": 16}

    @property
    def layer_strides(self) -> dict[str, int]:
        return {"l1": 2, "l2": 4}

    @property
    def pool_specs(self) -> dict[str, PoolSpec]:
        return {"l1": PoolSpec(4, 4, 0, 4), "l2": PoolSpec(2, 2, 0, 4)}

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = self.resolve_layers(layers)
        out: dict[str, torch.Tensor] = {}
        x = self.l1(x)
        out["l1"] = x
        if wanted[-1] != "l1":
            out["l2"] = self.l2(x)
        return {name: out[name] for name in wanted}


def registered_entries(module: ModuleType) -> list[Entry]:
    """Register ``module`` as the plugin loader would (in a private registry) and return its entries."""
    loaded = LoadedPlugins(Registry(), [], new_manager())
    info = register_module(loaded, module, PluginInfo(module.__name__, "", "", module.__name__))
    assert info.status == "ok", f"{module.__name__} failed to register: {info.error}"
    return loaded.registry.list()


def check_component(cls: type) -> None:
    """Name, summary, options model of the kind; every option has a description (required options are fine)."""
    assert isinstance(cls.name, str) and cls.name, f"{cls.__qualname__}: set a non-empty 'name'"
    assert cls.summary(), f"{cls.name}: give the class a docstring (its first line is the summary)"
    base_config = KINDS[cls.kind].Config
    assert issubclass(cls.Config, base_config), f"{cls.name}: Config must subclass {base_config.__name__}"
    for option, field in cls.Config.model_fields.items():
        assert option == "name" or field.description, f"{cls.name}.{option}: add description= to the Field"


def check_backbone(cls: type[Backbone], size: int = 64) -> None:
    """Every layer has the declared channels and stride from one pass; a subset stops early; freeze works."""
    torch.manual_seed(0)
    model = cls(cls.Config(name=cls.name)).eval()
    x = torch.randn(2, model.config.in_channels, size, size)
    with torch.no_grad():
        features = model(x, "all")
    assert list(features) == list(model.layer_names), f"{cls.name}: forward('all') must return every layer in order"
    for layer, feature in features.items():
        assert feature.shape[1] == model.layer_channels[layer], (
            f"{cls.name}.{layer}: channels differ from layer_channels"
        )
        # Padding makes a map at most ceil(size / stride) (+1 for odd rounding); unpadded convs shrink it.
        largest = -(-size // model.layer_strides[layer]) + 1
        assert 1 <= feature.shape[-1] <= largest, f"{cls.name}.{layer}: spatial size does not fit layer_strides"
        assert isinstance(model.pool_specs[layer], PoolSpec)
    first = model.layer_names[0]
    with torch.no_grad():
        assert list(model(x, [first])) == [first]
    model.freeze()
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training, f"{cls.name}: a frozen trunk must stay in eval mode"


def _same_nested(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_nested(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_nested(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def check_pretext(cls: type[PretextTask], trunk: Backbone | None = None, image_size: int = 96) -> None:
    """Picklable, deterministic samples that collate; the loss (a finite scalar, or a dict with one under 'loss'
    and extra scalars) has gradients; the step hooks run; the model's state (heads, encoders, queues) is a state
    dict that loads back; the evaluated trunk is a Backbone of the model."""
    from sslreg.data import stack
    from sslreg.pretext import StepContext

    task = cls(cls.Config(name=cls.name))
    task = pickle.loads(pickle.dumps(task))
    image = np.random.default_rng(0).integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
    first = task.make_sample(image, np.random.default_rng(1))
    again = task.make_sample(image, np.random.default_rng(1))
    assert isinstance(first, tuple) and len(first) == 2, f"{cls.name}: make_sample must return (inputs, targets)"
    assert _same_nested(first, again), f"{cls.name}: make_sample must depend only on rng"
    trunk = trunk or TinyBackbone(BackboneConfig(name="tiny", in_channels=cls.input_channels))
    torch.manual_seed(0)
    model = task.build_model(trunk)
    assert isinstance(model, PretextModel) and model.trunk is trunk
    inputs, targets = stack([first, again])
    context = StepContext(iteration=0, max_iters=2)
    with torch.no_grad():
        task.before_step(model, context)
    takes_context = "context" in inspect.signature(task.loss).parameters
    out = task.loss(model, inputs, targets, context=context) if takes_context else task.loss(model, inputs, targets)
    losses = out if isinstance(out, dict) else {"loss": out}
    loss = losses.get("loss")
    assert isinstance(loss, torch.Tensor) and loss.numel() == 1, f"{cls.name}: loss must be a scalar tensor"
    assert torch.isfinite(loss), f"{cls.name}: loss must be finite"
    for name, value in losses.items():
        assert name.isidentifier(), f"{cls.name}: logged scalar names must be identifiers, not {name!r}"
        assert math.isfinite(float(torch.as_tensor(value).detach().reshape(()))), f"{cls.name}: {name} not finite"
    loss.backward()
    assert any(p.grad is not None for p in trunk.parameters()), f"{cls.name}: no gradient reaches the trunk"
    with torch.no_grad():
        task.after_step(model, context)
    evaluated = task.evaluated_trunk(model)
    assert isinstance(evaluated, Backbone) and any(module is evaluated for module in model.modules()), (
        f"{cls.name}: evaluated_trunk must return a Backbone held by the model"
    )
    assert evaluated.state_dict().keys() == trunk.state_dict().keys(), f"{cls.name}: evaluated trunk of another kind"
    fresh = cls(cls.Config(name=cls.name)).build_model(
        TinyBackbone(BackboneConfig(name="tiny", in_channels=cls.input_channels))
    )
    fresh.load_state_dict(model.state_dict())  # everything the task keeps is checkpointable state


def _image_digest(image: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()


def _token(sample: Sample | None) -> tuple[Any, ...]:
    """What identifies a sample when comparing streams: its key, image shape and pixels (None: unreadable)."""
    if sample is None:
        return ("unreadable",)
    return (sample.key, sample.image.shape, _image_digest(sample.image))


def _same_target(a: Any, b: Any) -> bool:
    """Equal targets, compared through dicts, lists and tuples down to arrays and tensors."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_target(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_target(x, y) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, torch.Tensor)) or isinstance(b, (np.ndarray, torch.Tensor)):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _assert_same(name: str, what: str, a: Sample | None, b: Sample | None) -> None:
    assert (a is None) == (b is None), f"{name}: {what} gives a sample once and None once"
    if a is not None and b is not None:
        assert a.key == b.key, f"{name}: {what} gives key {a.key!r} and then {b.key!r}"
        assert a.image.shape == b.image.shape and np.array_equal(a.image, b.image), (
            f"{name}: {what} gives different pixels for {a.key!r}; all randomness must come from the config's seeds"
        )
        assert _same_target(a.target, b.target), f"{name}: {what} gives different targets for {a.key!r}"


def _check_sample(name: str, sample: object) -> None:
    if sample is None:
        return
    assert isinstance(sample, Sample), f"{name}: samples must be sslreg.Sample or None, got {type(sample).__name__}"
    image = sample.image
    assert isinstance(image, np.ndarray), f"{name}: Sample.image must be a numpy array"
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) > 0, (
        f"{name}: Sample.image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape} for {sample.key!r}"
    )
    assert isinstance(sample.key, str), f"{name}: Sample.key must be a str"


def check_dataset(
    source: DatasetSource | type[DatasetSource], options: Mapping[str, Any] | None = None, limit: int = 8
) -> None:
    """A dataset built on a small fixture really serves its data.

    ``source`` is a built source, or a DatasetSource class plus the ``options`` of a fixture (a folder the test
    wrote; keep it small: the whole stream is read several times). Checks: ``check(config)`` returns a list of
    str and finds nothing wrong with a fixture that builds; ``len() > 0`` (streams: when known); samples are
    RGB uint8 (H, W, 3) or None; the same index (stream) twice, a freshly built copy and an unpickled copy give
    the same samples; ``stream(p, n)`` parts for n in 1, 2, 3 are disjoint and their union is every sample.
    """
    if isinstance(source, DatasetSource):
        cls, config = type(source), source.config
    else:
        cls = source
        config = cls.Config(name=cls.name, **dict(options or {}))
        source = cls(config)
    name = cls.name
    problems = cls.check(config)
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems), (
        f"{name}: check(config) must return a list of str, got {problems!r}"
    )
    assert not problems, f"{name}: check(config) finds problems with a fixture that builds: {problems}"
    try:
        size: int | None = len(source)
    except TypeError:
        assert source.is_stream, f"{name}: only streams may have an unknown length"
        size = None
    assert size is None or size > 0, f"{name}: len() is {size} on a fixture; build the fixture with some images"

    whole = list(source.stream(0, 1, 0))
    for sample in whole:
        _check_sample(name, sample)
    assert any(sample is not None for sample in whole), f"{name}: stream() yields no readable sample"
    if not source.is_stream:
        assert len(whole) == size, f"{name}: stream() yields {len(whole)} samples but len() is {size}"
    fresh = cls(config)
    copy = pickle.loads(pickle.dumps(source))
    if source.is_stream:
        for what, other in (("stream() read twice", source), ("a fresh copy", fresh), ("an unpickled copy", copy)):
            again = list(other.stream(0, 1, 0))
            assert len(again) == len(whole), f"{name}: {what} yields {len(again)} samples, first {len(whole)}"
            for a, b in zip(whole, again):
                _assert_same(name, what, a, b)
    else:
        for index in range(min(limit, len(whole))):
            first = source.load(index)
            _check_sample(name, first)
            _assert_same(name, f"load({index}) twice", first, source.load(index))
            _assert_same(name, f"load({index}) on a fresh copy", first, fresh.load(index))
            _assert_same(name, f"load({index}) on an unpickled copy", first, copy.load(index))
            _assert_same(name, f"load({index}) and stream()", first, whole[index])

    expected = Counter(_token(sample) for sample in whole)
    for num_parts in (1, 2, 3):
        parts = [Counter(_token(s) for s in source.stream(part, num_parts, 0)) for part in range(num_parts)]
        union = sum(parts, Counter())
        assert union == expected, (
            f"{name}: stream(part, {num_parts}) parts are not disjoint and complete:"
            f" {sum(union.values())} samples over the parts, {sum(expected.values())} in stream(0, 1);"
            f" missing {list((expected - union).elements())[:3]}, extra {list((union - expected).elements())[:3]}"
        )


class TinyLabeledConfig(DatasetConfig):
    """Options of the kit's in-memory labelled dataset."""

    name: str = "tiny_labeled"
    split: Literal["train", "test"] = Field("train", description="train and test draw different images.")
    target: Literal["class", "multilabel"] = Field(
        "multilabel", description="'class': one class per image; 'multilabel': 1 present / -1 absent per class."
    )
    num_images: int = Field(24, ge=2, le=10_000, description="Images in the split.")
    num_classes: int = Field(3, ge=2, le=6, description="Classes (one colour each).")
    size: int = Field(32, ge=16, le=256, description="Side of the square images.")


#: The class colours of TinyLabeled.
TINY_COLOURS = ((220, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 40), (200, 40, 210), (40, 210, 210))


class TinyLabeled(DatasetSource):
    """Coloured squares on grey noise, made in memory: class c is a square of colour c (for evaluator checks)."""

    name: ClassVar[str] = "tiny_labeled"
    Config: ClassVar[type[TinyLabeledConfig]] = TinyLabeledConfig
    config: TinyLabeledConfig

    def __init__(self, config: TinyLabeledConfig) -> None:
        super().__init__(config)
        self.target_kind = config.target
        rng = np.random.default_rng([config.num_classes, 0 if config.split == "train" else 1])
        self.samples = [self._draw(index, rng) for index in range(config.num_images)]

    def _draw(self, index: int, rng: np.random.Generator) -> Sample:
        cfg = self.config
        if cfg.target == "class":
            present = np.zeros(cfg.num_classes, bool)
            present[index % cfg.num_classes] = True
        else:
            present = rng.random(cfg.num_classes) < 0.5
            present[index % cfg.num_classes] = True  # at least one class per image, each class often
        image = rng.integers(90, 150, size=(cfg.size, cfg.size, 3)).astype(np.uint8)
        side = max(4, cfg.size // 3)
        for cls in np.flatnonzero(present):
            top, left = rng.integers(0, cfg.size - side, size=2)
            image[top : top + side, left : left + side] = TINY_COLOURS[cls]
        target: Any = (
            int(index % cfg.num_classes) if cfg.target == "class" else np.where(present, 1, -1).astype(np.int8)
        )
        return Sample(image, target, f"{cfg.split}/{index:04d}")

    @property
    def class_names(self) -> list[str]:
        return [f"colour{c}" for c in range(self.config.num_classes)]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Sample | None:
        return self.samples[index]


def tiny_labeled_builder(spec: DataSpec | Mapping[str, Any]) -> DatasetSource:
    """EvalContext.build_dataset for the kit: builds TinyLabeled from a spec named 'tiny_labeled'."""
    raw = spec.model_dump() if isinstance(spec, ComponentSpec) else dict(spec)
    assert raw.get("name") == TinyLabeled.name, (
        f"check_evaluator builds only {TinyLabeled.name!r} datasets; got {raw.get('name')!r} (pass build_dataset=)"
    )
    return TinyLabeled(TinyLabeledConfig.model_validate(raw))


def _data_fields(config_cls: type) -> list[str]:
    """Options of an evaluator that name a dataset (DataSpec fields such as train/test)."""
    fields = []
    for option, field in config_cls.model_fields.items():
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        if any(isinstance(c, type) and issubclass(c, ComponentSpec) for c in candidates):
            fields.append(option)
    return fields


def check_evaluator(
    cls: type[Evaluator],
    options: Mapping[str, Any] | None = None,
    build_dataset: Callable[[DataSpec | dict], DatasetSource] | None = None,
    cache_dir: str | Path | None = None,
) -> list[EvalResult]:
    """Run the evaluator on the kit's TinyBackbone and tiny labelled data; return its well-formed results.

    Every dataset option (train, test, ...) not in ``options`` becomes the in-memory ``tiny_labeled`` dataset
    (split 'test' for options named like test, else 'train'; multilabel targets; override with e.g.
    ``{"train": {"name": "tiny_labeled", "target": "class"}}``). Checks: a non-empty list of EvalResult named
    after the evaluator, every requested layer scored with finite numbers, and the trunk left unchanged.
    """
    options = dict(options or {})
    for option in _data_fields(cls.Config):
        split = "test" if "test" in option or "val" in option else "train"
        options.setdefault(option, {"name": TinyLabeled.name, "split": split})
    config = cls.Config(name=cls.name, **options)
    evaluator = cls(config)
    torch.manual_seed(0)
    trunk = TinyBackbone().freeze()
    before = {key: value.clone() for key, value in trunk.state_dict().items()}
    with tempfile.TemporaryDirectory() as scratch:
        context = EvalContext(
            device=torch.device("cpu"),
            cache_dir=Path(cache_dir or scratch),
            seed=0,
            build_dataset=build_dataset or tiny_labeled_builder,
        )
        results = evaluator.evaluate(trunk, context)
    name = cls.name
    assert isinstance(results, list) and results, f"{name}: evaluate() must return a non-empty list of EvalResult"
    wanted = trunk.resolve_layers(getattr(config, "layers", "all"))
    for result in results:
        assert isinstance(result, EvalResult), f"{name}: evaluate() returned {type(result).__name__}, not EvalResult"
        assert result.evaluator == name, f"{name}: EvalResult.evaluator is {result.evaluator!r}"
        assert result.metric, f"{name}: EvalResult.metric is empty"
        assert set(result.layers) == set(wanted), (
            f"{name}: {result.metric} scores layers {sorted(result.layers)}, asked for {wanted}"
        )
        for layer, score in result.layers.items():
            assert math.isfinite(score.mean), f"{name}: {result.metric} on {layer} is {score.mean}"
            assert score.n >= 1 and (score.std is None or (math.isfinite(score.std) and score.std >= 0)), (
                f"{name}: {result.metric} on {layer}: bad std {score.std} / n {score.n}"
            )
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, before[key]), f"{name}: evaluate() changed the frozen trunk's {key}"
    assert not any(p.requires_grad for p in trunk.parameters()), f"{name}: evaluate() unfroze the trunk"
    return results


def _option_sets(value: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(value)] if isinstance(value, Mapping) else [dict(item) for item in value]


def check_plugin(
    module: ModuleType,
    dataset_options: Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]] | None = None,
    evaluator_options: Mapping[str, Mapping[str, Any]] | None = None,
    build_dataset: Callable[[DataSpec | dict], DatasetSource] | None = None,
) -> list[Entry]:
    """Register the plugin module alone and run the checks for each component it provides.

    ``dataset_options`` maps a dataset name to the options of a small fixture (or a list of such option sets);
    ``evaluator_options`` maps an evaluator name to options that make it quick (``check_evaluator``). Datasets and
    evaluators without options are not run; a warning names them. ``build_dataset`` builds the datasets an
    evaluator names (default: the kit's in-memory ``tiny_labeled``), e.g. the plugin's own demo data.
    """
    dataset_options, evaluator_options = dict(dataset_options or {}), dict(evaluator_options or {})
    entries = registered_entries(module)
    assert entries, f"{module.__name__}: registers no component"
    names = {(entry.kind, entry.name) for entry in entries}
    for kind, given in (("dataset", dataset_options), ("evaluator", evaluator_options)):
        unknown = [option for option in given if (kind, option) not in names]
        assert not unknown, f"{module.__name__}: {kind}_options names {unknown}, which it does not register"
    left_out = []
    for entry in entries:
        check_component(entry.cls)
        if entry.kind == "backbone":
            check_backbone(entry.cls)
        elif entry.kind == "pretext":
            check_pretext(entry.cls)
        elif entry.kind == "dataset" and entry.name in dataset_options:
            for options in _option_sets(dataset_options[entry.name]):
                check_dataset(entry.cls, options)
        elif entry.kind == "evaluator" and entry.name in evaluator_options:
            check_evaluator(entry.cls, evaluator_options[entry.name], build_dataset)
        elif entry.kind in ("dataset", "evaluator"):
            left_out.append(f"{entry.kind} {entry.name!r}")
    if left_out:
        warnings.warn(
            f"check_plugin({module.__name__}): {', '.join(left_out)} not run; pass their fixture options as"
            " dataset_options={name: {...}} / evaluator_options={name: {...}}",
            stacklevel=2,
        )
    return entries
