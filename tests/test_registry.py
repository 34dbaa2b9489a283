import pytest
from pydantic import Field

from sslreg import PretextConfig, PretextTask
from sslreg.registry import Registry, RegistryError, UnknownComponent
from sslreg.testing import TinyBackbone


class SpinConfig(PretextConfig):
    turns: int = Field(4, ge=2, le=8, description="Number of rotations.")


class Spin(PretextTask):
    """A pretext task used only by these tests."""

    name = "spin"
    Config = SpinConfig

    def make_sample(self, image, rng):  # pragma: no cover - not called here
        raise NotImplementedError

    def build_model(self, trunk):  # pragma: no cover
        raise NotImplementedError

    def loss(self, model, inputs, targets):  # pragma: no cover
        raise NotImplementedError


def test_add_get_list_and_build():
    registry = Registry()
    entry = registry.add(Spin, plugin="p", distribution="sslreg-p", version="1.2")
    registry.add(TinyBackbone, plugin="p", distribution="sslreg-p", version="1.2")
    assert entry.kind == "pretext" and entry.provider == "sslreg-p 1.2"
    assert registry.get("pretext", "spin") is entry
    assert [e.name for e in registry.list()] == ["tiny", "spin"]
    assert [e.name for e in registry.list("pretext", "sp*")] == ["spin"]
    assert registry.list("backbone", "sp*") == []
    task = registry.build("pretext", {"name": "spin", "turns": 6})
    assert isinstance(task, Spin) and task.config.turns == 6


def test_unknown_name_suggests_close_names():
    registry = Registry()
    registry.add(Spin, plugin="p")
    with pytest.raises(UnknownComponent, match="did you mean 'spin'"):
        registry.get("pretext", "spni")
    assert registry.suggest("spn") == ["spin"]


def test_duplicate_name_names_both_providers():
    registry = Registry()
    registry.add(Spin, plugin="first", distribution="sslreg-first", version="1")
    with pytest.raises(RegistryError, match="'second'.*already registered by plugin 'first'"):
        registry.add(Spin, plugin="second")


def test_non_components_are_refused():
    with pytest.raises(RegistryError, match="not a component"):
        Registry().add(int)
