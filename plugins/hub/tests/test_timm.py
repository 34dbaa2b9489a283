"""timm models through the hub trunk: features_only's stages under timm's own parameter names (skipped without timm)."""

from __future__ import annotations

import pytest
import torch

from sslreg import UserError, build_trunk, get_registry

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("arch", ["test_convnext", "test_vit"])
def test_a_timm_checkpoint_loads_and_gives_timms_own_stage_features(tmp_path, arch):
    """A full timm state dict (head included) saved DDP-style under 'model' loads; taps equal forward_intermediates
    of the unpruned model, i.e. the stages features_only returns."""
    torch.manual_seed(0)
    reference = timm.create_model(arch, pretrained=False).eval()
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": {f"module.{k}": v for k, v in reference.state_dict().items()}, "epoch": 3}, path)
    trunk = build_trunk(get_registry(), {"name": "hub", "arch": f"timm/{arch}", "weights": str(path)}, seed=5).eval()
    report = trunk.weights_report
    assert (report.prefix, report.nested_under, report.missing, report.unexpected) == ("module.", "model", [], [])
    assert report.ignored_head and all(key.startswith("module.head") for key in report.ignored_head)

    info = reference.feature_info
    assert [tap.node for tap in trunk.adapter.taps] == [entry["module"] for entry in info]
    assert list(trunk.layer_channels.values()) == [entry["num_chs"] for entry in info]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = trunk(x, "all")
        theirs = reference.forward_intermediates(x, indices=len(info), intermediates_only=True)
        features_only = timm.create_model(arch, pretrained=False, features_only=True, out_indices=range(len(info)))
    assert features_only.feature_info.channels() == list(trunk.layer_channels.values())
    assert len(ours) == len(theirs) == len(info)
    for mine, reference_map in zip(ours.values(), theirs):
        assert torch.equal(mine, reference_map)


def test_timm_taps_by_feature_module_and_mistakes():
    registry = get_registry()
    trunk = build_trunk(
        registry, {"name": "hub", "arch": "timm/test_convnext", "taps": ["stages.2", "stages.0"]}, seed=0
    )
    assert trunk.layer_names == ("stages.0", "stages.2") and trunk.layer_strides == {"stages.0": 4, "stages.2": 16}
    assert "stages.3." in trunk.head_prefixes  # stages after the deepest tap are pruned away
    with pytest.raises(UserError, match=r"timm/test_convnext has no feature module 'stages.7'; it has \['stages.0'"):
        build_trunk(registry, {"name": "hub", "arch": "timm/test_convnext", "taps": ["stages.7"]}, seed=0)
    lightness = {"name": "hub", "arch": "timm/test_convnext", "input": {"space": "lab_l"}}
    one_channel = build_trunk(registry, lightness, seed=0)
    assert one_channel.stem[0].weight.shape[1] == 1  # timm builds the stem for L-only input (colorization)
