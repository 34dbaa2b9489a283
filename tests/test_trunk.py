"""The core trunk builder: any registered trunk (third-party too) gets its seed, weights and input contract."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from sslreg import InputContract, UserError, build_trunk, contract_of_file
from sslreg.experiment import validate_experiment
from sslreg.registry import Registry
from sslreg.testing import TinyBackbone


class ThirdPartyTrunk(TinyBackbone):
    """A trunk as a third-party plugin would write it: no weights handling of its own."""

    name = "third_party"


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add(ThirdPartyTrunk, "thirdparty", "sslreg-thirdparty", "0.1")
    return registry


def test_seed_decides_the_init_and_leaves_the_callers_rng_alone(registry):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = build_trunk(registry, {"name": "third_party"}, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    b = build_trunk(registry, {"name": "third_party"}, seed=1)
    c = build_trunk(registry, {"name": "third_party"}, seed=2)
    own = build_trunk(registry, {"name": "third_party", "seed": 2}, seed=1)
    assert torch.equal(a.l1[0].weight, b.l1[0].weight) and not torch.equal(a.l1[0].weight, c.l1[0].weight)
    assert torch.equal(own.l1[0].weight, c.l1[0].weight)


def test_third_party_trunk_loads_its_weights_file(tmp_path, registry):
    trained = build_trunk(registry, {"name": "third_party"}, seed=7)
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in trained.state_dict().items()}}, path)
    loaded = build_trunk(registry, {"name": "third_party", "weights": str(path)}, seed=0)
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.weights_report.prefix == "module.encoder_q."
    random = build_trunk(registry, {"name": "third_party"}, seed=0)
    assert not torch.equal(random.l1[0].weight, loaded.l1[0].weight)


def test_a_wrong_weights_file_is_one_line_never_a_random_trunk(tmp_path, registry):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(UserError, match=r"third_party: no key of .*other\.pth.* matches this trunk") as caught:
        build_trunk(registry, {"name": "third_party", "weights": str(path)}, seed=0)
    assert "\n" not in str(caught.value)
    half = {k: v for k, v in build_trunk(registry, {"name": "third_party"}, seed=0).state_dict().items() if "l1" in k}
    torch.save(half, path)
    with pytest.raises(UserError, match="lack 2 of the trunk's tensors: l2.0.weight, l2.0.bias"):
        build_trunk(registry, {"name": "third_party", "weights": str(path)}, seed=0)


def test_contract_recorded_in_the_file_is_used_and_the_option_overrides_it(tmp_path, registry):
    per_image = InputContract(normalize="per_channel")
    trunk = build_trunk(registry, {"name": "third_party"}, seed=0, contract=per_image)
    path = tmp_path / "trunk.pth"
    torch.save({"state_dict": {f"trunk.{k}": v for k, v in trunk.state_dict().items()},
                "meta": {"input_contract": per_image.model_dump(mode="json")}}, path)  # fmt: skip
    assert contract_of_file(path) == per_image
    assert build_trunk(registry, {"name": "third_party", "weights": str(path)}, seed=0).input_contract == per_image
    override = {"name": "third_party", "weights": str(path), "input": {"mean": [0.5], "std": [0.5]}}
    assert build_trunk(registry, override, seed=0).input_contract == InputContract(mean=(0.5,), std=(0.5,))
    assert build_trunk(registry, {"name": "third_party"}, seed=0).input_contract == InputContract()


def test_weights_of_an_evaluate_only_config_are_loaded_by_the_core(tmp_path):
    """`sslreg run` with a third-party trunk and `weights:` evaluates those weights, not a random trunk."""
    sys.path.insert(0, str(Path(__file__).parent))
    import runner_helpers as helpers

    registry = helpers.make_registry()
    trained = build_trunk(registry, {"name": "tinynet"}, seed=11)
    path = tmp_path / "tiny.pth"
    torch.save(trained.state_dict(), path)
    from sslreg.runner.evaluation import evaluated_trunk

    raw = {"backbone": {"name": "tinynet", "weights": str(path)}, "evaluate": [{"name": "centroid"}]}
    trunk = evaluated_trunk(validate_experiment(raw, registry), registry, None)
    assert torch.equal(trunk.c1.weight, trained.c1.weight)
