"""Conformance kit for plugin authors: ``check_plugin(module)`` runs every check that applies to what it registers.

Use it from a plugin's tests:  ``from sslreg.testing import check_plugin; check_plugin(sslreg_myplugin)``.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch
from torch import nn

from sslreg.backbone import Backbone, BackboneConfig, PoolSpec
from sslreg.dataset import DatasetSource, Sample
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
    """Name, summary, options model with defaults for everything but 'name'."""
    assert isinstance(cls.name, str) and cls.name, f"{cls.__qualname__}: set a non-empty 'name'"
    assert cls.summary(), f"{cls.name}: give the class a docstring (its first line is the summary)"
    base_config = KINDS[cls.kind].Config
    assert issubclass(cls.Config, base_config), f"{cls.name}: Config must subclass {base_config.__name__}"
    cls.Config(name=cls.name)  # every option has a default
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


def check_pretext(cls: type[PretextTask], trunk: Backbone | None = None, image_size: int = 96) -> None:
    """Picklable, deterministic samples; the model's loss is a finite scalar with gradients."""
    task = cls(cls.Config(name=cls.name))
    task = pickle.loads(pickle.dumps(task))
    image = np.random.default_rng(0).integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
    first = task.make_sample(image, np.random.default_rng(1))
    again = task.make_sample(image, np.random.default_rng(1))
    assert all(torch.equal(a, b) for a, b in zip(first, again)), f"{cls.name}: make_sample must depend only on rng"
    trunk = trunk or TinyBackbone(BackboneConfig(name="tiny", in_channels=cls.input_channels))
    model = task.build_model(trunk)
    assert isinstance(model, PretextModel) and model.trunk is trunk
    inputs, targets = (torch.stack([first[i], again[i]]) for i in range(2))
    loss = task.loss(model, inputs, targets)
    assert loss.ndim == 0 and torch.isfinite(loss), f"{cls.name}: loss must be a finite scalar"
    loss.backward()
    assert any(p.grad is not None for p in trunk.parameters()), f"{cls.name}: no gradient reaches the trunk"


def check_dataset(source: DatasetSource, limit: int = 4) -> None:
    """Length, and samples that are RGB uint8 images (or None for an unreadable file)."""
    assert len(source) >= 0
    for index in range(min(limit, len(source))):
        sample = source.load(index)
        if sample is None:
            continue
        assert isinstance(sample, Sample)
        assert sample.image.dtype == np.uint8 and sample.image.ndim == 3 and sample.image.shape[2] == 3


def check_plugin(module: ModuleType) -> list[Entry]:
    """Register the plugin module alone and run the checks for each component it provides."""
    entries = registered_entries(module)
    assert entries, f"{module.__name__}: registers no component"
    for entry in entries:
        check_component(entry.cls)
        if entry.kind == "backbone":
            check_backbone(entry.cls)
        elif entry.kind == "pretext":
            check_pretext(entry.cls)
    return entries
