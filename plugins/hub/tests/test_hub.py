"""The hub trunk: torchvision (and timm, when installed) models tapped per stage, weights from local files in the
common self-supervised layouts, bit-identical to the libraries' own forward; nothing downloaded."""

from __future__ import annotations

import copy
import json
import pickle
import socket

import pytest
import sslreg_hub
import torch
import torchvision
from pydantic import ValidationError
from sslreg_hub import Hub, HubConfig, pool_spec

from sslreg import UserError, build_trunk, extract_features, get_registry
from sslreg.cli import main
from sslreg.testing import TinyLabeled, TinyLabeledConfig, check_plugin


def randomise_bn(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm statistics and affine terms, so that loading them is really checked."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)


def torchvision_taps(model: torchvision.models.ResNet, x: torch.Tensor) -> list[torch.Tensor]:
    """torchvision's own forward, read at relu (after conv1+bn1) and layer1..layer4."""
    x = model.relu(model.bn1(model.conv1(x)))
    taps = [x]
    x = model.maxpool(x)
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = stage(x)
        taps.append(x)
    return taps


def test_plugin_conforms():
    [entry] = check_plugin(sslreg_hub)
    assert (entry.kind, entry.name) == ("backbone", "hub")


def test_moco_resnet50_loads_bit_identically_through_hub_and_resnet50(tmp_path):
    """A MoCo-style checkpoint (torchvision keys under module.encoder_q., nested in state_dict, with an MLP head,
    the key encoder and the queue) gives hub and the first-party resnet50 the same tensors and features, equal to
    torchvision's own forward at the taps."""
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None).eval()
    randomise_bn(reference, seed=1)
    tensors = {f"module.encoder_q.{k}": v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    extra = {
        "module.encoder_q.fc.0.weight": torch.randn(16, 2048),
        "module.encoder_q.fc.2.weight": torch.randn(8, 16),
        "module.encoder_k.conv1.weight": torch.randn(64, 3, 7, 7),
        "module.queue": torch.randn(8, 4),
    }
    path = tmp_path / "moco_v2.pth.tar"
    torch.save({"epoch": 200, "arch": "resnet50", "state_dict": {**tensors, **extra}}, path)

    registry = get_registry()
    hub = build_trunk(registry, {"name": "hub", "arch": "torchvision/resnet50", "weights": str(path)}, seed=1)
    ours = build_trunk(registry, {"name": "resnet50", "weights": str(path)}, seed=2)
    for trunk in (hub, ours):
        report = trunk.weights_report
        assert (report.prefix, report.nested_under) == ("module.encoder_q.", "state_dict")
        assert report.missing == [] and report.unexpected == []
        assert sorted(report.ignored_head) == sorted(extra)
    expected = reference.state_dict()
    assert set(hub.state_dict()) == {key for key in expected if not key.startswith("fc.")}
    assert all(torch.equal(value, expected[key]) for key, value in hub.state_dict().items())
    assert hub.head_prefixes == ("fc.",)
    assert [tap.node for tap in hub.adapter.taps] == ["relu", "layer1", "layer2.3", "layer3.5", "layer4.2"]

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        from_hub = hub.eval()(x, "all")
        from_ours = ours.eval()(x, "all")
        from_torchvision = torchvision_taps(reference, x)
    assert list(from_hub) == ["stage1", "stage2", "stage3", "stage4", "stage5"]
    for a, b, c in zip(from_hub.values(), from_ours.values(), from_torchvision):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert hub.pool_specs["stage2"].grid == ours.pool_specs["res2"].grid == 6  # the protocol's 256 x 6 x 6


def test_info_lists_the_taps_of_the_default_arch(capsys):
    assert main(["info", "hub", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    layers = info["details"]["layers"]
    assert info["details"]["arch"] == "torchvision/resnet18"
    assert {name: (row["node"], row["channels"], row["stride"]) for name, row in layers.items()} == {
        "stage1": ("relu", 64, 2),
        "stage2": ("layer1", 64, 4),
        "stage3": ("layer2", 128, 8),
        "stage4": ("layer3", 256, 16),
        "stage5": ("layer4", 512, 32),
    }
    assert all(8000 <= row["pooled_dims"] <= 9600 for row in layers.values())
    assert {row["option"] for row in info["options"]} >= {"arch", "taps", "input_size", "pretrained", "weights"}


def test_sslreg_hub_lists_any_arch_and_shows_how_a_file_maps(tmp_path, capsys):
    torch.manual_seed(0)
    source = torchvision.models.resnet18(weights=None)
    path = tmp_path / "byol.pth"
    torch.save({f"backbone.{k}": v for k, v in source.state_dict().items()}, path)
    assert main(["hub", "torchvision/resnet18", "--taps", "layer2", "layer4", "--weights", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert list(facts["taps"]) == ["layer2", "layer4"] and facts["head"] == ["fc."]
    assert facts["weights"]["mapping"] == "'backbone.<key>'" and facts["weights"]["missing"] == []
    assert facts["weights"]["ignored_head"] == ["backbone.fc.weight", "backbone.fc.bias"]
    assert main(["hub", "torchvision/resnet18", "--taps", "layer9"]) == 2
    assert "has no node 'layer9'" in capsys.readouterr().err


def test_explicit_taps_are_named_nodes_and_match_the_stages():
    torch.manual_seed(0)
    staged = Hub(HubConfig(name="hub")).eval()
    named = Hub(HubConfig(name="hub", taps=["layer4", "layer3"])).eval()
    named.load_state_dict(staged.state_dict(), strict=False)
    assert named.layer_names == ("layer3", "layer4")  # in graph order whatever the order given
    assert named.layer_channels == {"layer3": 256, "layer4": 512} and named.layer_strides["layer4"] == 32
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(named(x, "all")["layer3"], staged(x, ["stage4"])["stage4"])
    with pytest.raises(UserError, match=r"torchvision/resnet18 has no node 'layer3.9'; did you mean"):
        Hub(HubConfig(name="hub", taps=["layer3.9"]))


def test_a_forward_stops_after_the_deepest_requested_tap():
    trunk = Hub(HubConfig(name="hub")).eval()
    called = []
    trunk.get_submodule("layer4.0.conv1").register_forward_pre_hook(lambda module, args: called.append("layer4"))
    with torch.no_grad():
        assert list(trunk(torch.randn(1, 3, 32, 32), ["stage2"])) == ["stage2"]
        assert called == []
        trunk(torch.randn(1, 3, 32, 32), ["stage2", "stage5"])
    assert called == ["layer4"]


def test_trains_as_a_pretraining_trunk_and_survives_copies_and_casts():
    torch.manual_seed(0)
    trunk = Hub(HubConfig(name="hub")).train()
    before = trunk.bn1.running_mean.clone()
    trunk(torch.randn(2, 3, 32, 32), "all")["stage5"].mean().backward()
    assert trunk.conv1.weight.grad is not None and not torch.equal(trunk.bn1.running_mean, before)
    trunk.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = trunk(x, "all")
        for other in (copy.deepcopy(trunk), pickle.loads(pickle.dumps(trunk))):
            assert all(torch.equal(expected[k], v) for k, v in other(x, "all").items())
        trunk.double()  # the cached graphs are rebuilt on the cast tensors
        assert trunk(x.double(), ["stage3"])["stage3"].dtype == torch.float64
    assert trunk.freeze() is trunk and not any(p.requires_grad for p in trunk.parameters())


def test_pooling_rule_reproduces_the_protocol_grids():
    """grid = round(sqrt(9216 / C)) capped by the map; the spec tiles the map exactly at the input size."""
    resnet50 = {64: (112, 12), 256: (56, 6), 512: (28, 4), 1024: (14, 3), 2048: (7, 2)}
    alexnet = {96: (55, 10), 256: (27, 6), 384: (13, 5)}
    for channels, (side, grid) in {**resnet50, **alexnet}.items():
        spec = pool_spec(channels, side)
        assert spec.grid == grid and (side - spec.kernel) // spec.stride + 1 == grid and spec.padding == 0
        assert torch.nn.functional.avg_pool2d(torch.zeros(1, 1, side, side), spec.kernel, spec.stride).shape[-1] == grid
    assert pool_spec(48, 10).grid == 10  # a small map is kept whole rather than upsampled


def test_never_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("hub tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    Hub(HubConfig(name="hub", arch="torchvision/mobilenet_v3_small"))
    with pytest.raises(ValidationError, match="sslreg never downloads weights: save them to a local file"):
        HubConfig(name="hub", pretrained=True)


def test_arch_mistakes_are_one_line(tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("backbone: {name: hub, arch: torchvision/resnet5}\nevaluate: [{name: voc07_svm}]\n")
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "backbone.arch" in err and "did you mean 'torchvision/resnet50'" in err
    for arch, message in [
        ("resnet50", "write LIBRARY/NAME"),
        ("keras/resnet50", "write LIBRARY/NAME"),
        ("torchvision/vit_b_16", "its blocks hold tokens"),
    ]:
        with pytest.raises(ValidationError, match=message):
            HubConfig(name="hub", arch=arch)
    with pytest.raises(UserError, match="takes 3 input channels, not 1"):
        Hub(HubConfig(name="hub", in_channels=1))


def test_timm_missing_is_one_line(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "timm" else object())
    with pytest.raises(ValidationError, match=r"timm is not installed here: pip install 'sslreg-hub\[timm\]'"):
        HubConfig(name="hub", arch="timm/resnet18")


def test_seeded_builds_feed_an_evaluators_feature_extraction():
    registry = get_registry()
    spec = {"name": "hub", "arch": "torchvision/squeezenet1_1"}
    trunk = build_trunk(registry, spec, seed=7).freeze()
    again = build_trunk(registry, spec, seed=7)
    assert all(torch.equal(value, again.state_dict()[key]) for key, value in trunk.state_dict().items())
    data = TinyLabeled(TinyLabeledConfig(num_images=6, target="class"))
    features = extract_features(trunk, data, "all", image_size=48, batch_size=4)
    dims = {layer: trunk.layer_channels[layer] * trunk.pool_specs[layer].grid ** 2 for layer in trunk.layer_names}
    assert {layer: array.shape for layer, array in features.features.items()} == {
        layer: (6, dim) for layer, dim in dims.items()
    }
    assert list(features.targets) == [0, 1, 2, 0, 1, 2]
