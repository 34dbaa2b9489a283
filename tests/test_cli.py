"""The listing and inspection commands, run in-process on the installed first-party plugins."""

import json

from sslreg.cli import main

FIRST_PARTY = {
    "backbone": {"alexnet", "resnet18", "resnet34", "resnet50", "resnet101"},
    "pretext": {"jigsaw", "colorization"},
    "dataset": {"image_folder", "embedded_photos", "embedded_shapes", "voc07"},
    "evaluator": {"voc07_svm", "low_shot", "linear_probe"},
}


def json_of(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_list_shows_every_first_party_component_with_its_provider(capsys):
    rows = json_of(capsys, "list", "--json")
    for kind, names in FIRST_PARTY.items():
        found = {row["name"]: row for row in rows if row["kind"] == kind}
        assert names <= set(found), (kind, names - set(found))
        for name in names:
            assert found[name]["distribution"].startswith("sslreg-") and found[name]["version"]
            assert found[name]["summary"]


def test_list_filters_by_kind_and_wildcard(capsys):
    rows = json_of(capsys, "list", "backbones", "resnet*", "--json")
    assert {row["kind"] for row in rows} == {"backbone"}
    assert {"resnet18", "resnet50"} <= {row["name"] for row in rows} and "alexnet" not in {r["name"] for r in rows}
    assert main(["list", "trunks"]) == 2
    assert "unknown kind 'trunks'" in capsys.readouterr().err


def test_info_resnet50_shows_layers_channels_and_parameters(capsys):
    info = json_of(capsys, "info", "resnet50", "--json")
    layers = info["details"]["layers"]
    assert list(layers) == ["res1", "res2", "res3", "res4", "res5"]
    assert [layers[name]["channels"] for name in layers] == [64, 256, 512, 1024, 2048]
    assert info["details"]["parameters"] > 23_000_000
    assert main(["info", "resnet50"]) == 0
    text = capsys.readouterr().out
    assert "res4" in text and "1024" in text and "parameters" in text


def test_info_lists_every_option_with_type_default_constraint_and_doc(capsys):
    info = json_of(capsys, "info", "jigsaw", "--json")
    option = {row["option"]: row for row in info["options"]}["num_permutations"]
    assert option["type"] == "int" and option["default"] == 2000
    assert option["constraint"] == "≥ 2, ≤ 10000" and option["doc"]
    assert info["consumes"] and info["produces"]


def test_info_unknown_name_suggests(capsys):
    assert main(["info", "resnet5O"]) == 2
    assert "did you mean 'resnet50'" in capsys.readouterr().err


def test_plugins_lists_installed_first_party_plugins_as_ok(capsys):
    report = json_of(capsys, "plugins", "--json")
    status = {row["name"]: row["status"] for row in report["installed"]}
    for name in ("backbones", "jigsaw", "colorization", "datasets", "svm", "linear"):
        assert status.get(name) == "ok", (name, status)


def test_plugins_shows_catalogue_entries_that_are_not_installed(capsys, monkeypatch, tmp_path):
    catalogue = tmp_path / "registry.yaml"
    catalogue.write_text(
        "plugins:\n  - name: notinstalled\n    requirement: sslreg-notinstalled>=1.0\n"
        "    kinds: [pretext]\n    components: {pretext: [rotation]}\n"
    )
    monkeypatch.setenv("SSLREG_CATALOGUE", str(catalogue))
    report = json_of(capsys, "plugins", "--json")
    assert [row["name"] for row in report["available"]] == ["notinstalled"]
    assert main(["plugins"]) == 0
    assert "pip install sslreg-notinstalled>=1.0" in capsys.readouterr().out
