"""registry.yaml must describe what the first-party plugins really register."""

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from sslreg.catalogue import catalogue_path, load_catalogue
from sslreg.testing import registered_entries

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = load_catalogue()
FIRST_PARTY = [entry for entry in CATALOGUE.plugins if entry.first_party]


def test_catalogue_exists_and_lists_first_party_plugins():
    assert catalogue_path().is_file()
    assert {entry.name for entry in FIRST_PARTY} >= {"backbones", "jigsaw", "colorization", "datasets", "svm", "linear"}


@pytest.mark.parametrize("entry", FIRST_PARTY, ids=lambda entry: entry.name)
def test_first_party_entry_matches_what_the_plugin_registers(entry):
    [entry_point] = entry_points(group="sslreg", name=entry.name)
    module = entry_point.load()
    registered: dict[str, list[str]] = {}
    for component in registered_entries(module):
        registered.setdefault(component.kind, []).append(component.name)
    assert {kind: sorted(names) for kind, names in entry.components.items()} == {
        kind: sorted(names) for kind, names in registered.items()
    }
    assert sorted(entry.kinds) == sorted(registered)
    assert (ROOT / entry.path / "pyproject.toml").is_file()


def test_the_packaged_catalogue_is_the_root_file():
    """sslreg/registry.yaml (shipped as package data) is a link to the canonical registry.yaml at the root."""
    assert catalogue_path() == ROOT / "sslreg" / "registry.yaml"
    assert catalogue_path().read_bytes() == (ROOT / "registry.yaml").read_bytes()


def test_invalid_catalogue_is_a_clear_error(tmp_path):
    bad = tmp_path / "registry.yaml"
    bad.write_text("plugins:\n  - name: x\n")
    with pytest.raises(ValueError, match="invalid catalogue"):
        load_catalogue(bad)
