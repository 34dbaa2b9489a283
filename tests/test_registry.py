import pytest
from pydantic import Field

from sslreg import PretextConfig, PretextTask
from sslreg.registry import AmbiguousComponent, Registry, RegistryError, UnknownComponent
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


def test_same_name_twice_from_one_distribution_names_both_plugins():
    registry = Registry()
    registry.add(Spin, plugin="first", distribution="sslreg-first", version="1")
    with pytest.raises(RegistryError, match="'second'.*already registered by plugin 'first' \\(sslreg-first 1\\)"):
        registry.add(Spin, plugin="second", distribution="sslreg-first", version="1")


def clashing_registry() -> Registry:
    registry = Registry()
    registry.add(Spin, plugin="spin", distribution="sslreg-spin", version="1.0")
    registry.add(Spin, plugin="dupspin", distribution="dup_spin", version="0.3")
    return registry


def test_a_clash_makes_the_bare_name_ambiguous_and_qualified_names_work():
    registry = clashing_registry()
    with pytest.raises(AmbiguousComponent) as caught:
        registry.get("pretext", "spin")
    assert str(caught.value) == (
        "pretext 'spin' is ambiguous: both 'dup_spin:spin' and 'sslreg-spin:spin' provide it; name one of them"
    )
    assert isinstance(caught.value, UnknownComponent) and isinstance(caught.value, LookupError)
    assert registry.get("pretext", "sslreg-spin:spin").distribution == "sslreg-spin"
    assert registry.get("pretext", "dup-spin:spin").plugin == "dupspin"  # distribution names compare as pip does
    assert registry.get("pretext", "DUP.SPIN:spin").plugin == "dupspin"
    assert registry.get("pretext", "dupspin:spin").plugin == "dupspin"  # the plugin's entry-point name works too
    assert [e.qualified_name for e in registry.list()] == ["dup_spin:spin", "sslreg-spin:spin"]
    assert all(registry.is_ambiguous(e) for e in registry.list())
    assert [e.plugin for e in registry.find("spin")] == ["dupspin", "spin"]  # sorted: order of loading never matters
    assert [e.plugin for e in registry.find("sslreg-spin:spin")] == ["spin"]
    assert [e.plugin for e in registry.list("pretext", "dup*")] == ["dupspin"]


def test_config_and_build_accept_qualified_names_and_refuse_ambiguous_ones():
    registry = clashing_registry()
    task = registry.build("pretext", {"name": "sslreg-spin:spin", "turns": 6})
    assert isinstance(task, Spin) and task.config.turns == 6
    config = registry.config("pretext", {"name": "dupspin:spin"})
    assert registry.build("pretext", config).config.name == "dupspin:spin"
    with pytest.raises(AmbiguousComponent, match="name one of them"):
        registry.config("pretext", {"name": "spin"})


def test_unknown_qualified_name_suggests_close_qualified_names():
    registry = clashing_registry()
    with pytest.raises(UnknownComponent, match="did you mean 'sslreg-spin:spin'"):
        registry.get("pretext", "sslreg-spn:spin")
    with pytest.raises(UnknownComponent, match="unknown pretext 'other:spin'"):
        registry.get("pretext", "other:spin")


def test_removing_one_provider_leaves_the_other_unambiguous():
    registry = clashing_registry()
    registry.remove([registry.get("pretext", "dupspin:spin")])
    assert registry.get("pretext", "spin").plugin == "spin" and len(registry) == 1
    registry.remove(registry.list())
    assert len(registry) == 0 and registry.find("spin") == []


def test_names_with_a_colon_are_refused():
    class Odd(Spin):
        """Its name would read as a qualified name."""

        name = "a:b"

    with pytest.raises(RegistryError, match="must not contain ':'"):
        Registry().add(Odd)


def test_an_exclusion_note_is_part_of_the_unknown_name_line():
    registry = Registry()
    registry.exclusion_note = lambda kind, name: f"X=1 excludes plugin {name!r}"
    with pytest.raises(UnknownComponent) as caught:
        registry.get("pretext", "spin")
    assert str(caught.value) == "unknown pretext 'spin' (X=1 excludes plugin 'spin')"


def test_non_components_are_refused():
    with pytest.raises(RegistryError, match="not a component"):
        Registry().add(int)
