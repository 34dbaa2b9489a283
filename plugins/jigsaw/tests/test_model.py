"""The N-way Siamese model: one trunk pass over all tiles, tile-ordered concatenation, |P|-way loss."""

from __future__ import annotations

import math
from importlib.metadata import entry_points

import numpy as np
import pytest
import sslreg_jigsaw
import torch
from sslreg_jigsaw import Jigsaw

from sslreg import BackboneConfig, PretextModel
from sslreg.registry import Registry


def batch(task: Jigsaw, photos: list[np.ndarray], size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    pairs = [task.make_sample(photos[i % len(photos)], rng) for i in range(size)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


@pytest.mark.parametrize("num_permutations", [100, 2000])
def test_shapes_and_loss(make_task, tiny_trunk, photos, num_permutations: int) -> None:
    task = make_task(num_permutations=num_permutations)
    model = task.build_model(tiny_trunk)
    assert isinstance(model, PretextModel) and model.trunk is tiny_trunk
    tiles, targets = batch(task, photos)
    assert tiles.shape == (4, 9, 3, 28, 28) and targets.shape == (4,) and targets.dtype == torch.long
    assert int(targets.max()) < num_permutations
    assert model(tiles).shape == (4, num_permutations)
    loss = task.loss(model, tiles, targets)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    loss.backward()
    assert tiny_trunk.conv1[0].weight.grad is not None and tiny_trunk.conv1[0].weight.grad.abs().sum() > 0


def test_head_is_sized_from_the_deepest_layer(make_task, tiny_trunk) -> None:
    model = make_task(num_permutations=10, tile_dim=8, hidden_dim=12).build_model(tiny_trunk)
    assert model.layer == "conv2"
    assert model.head.tile_fc[0].in_features == tiny_trunk.layer_channels["conv2"]
    assert model.head.classifier[1].in_features == 9 * 8 and model.head.classifier[-1].out_features == 10


def test_head_variants_pool_grid_and_no_hidden_layer(make_task, tiny_trunk, photos) -> None:
    task = make_task(num_permutations=10, tile_dim=8, hidden_dim=0, pool_size=2)
    model = task.build_model(tiny_trunk)
    assert model.head.tile_fc[0].in_features == tiny_trunk.layer_channels["conv2"] * 4
    linears = [m for m in model.head.classifier if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(72, 10)]
    assert model(batch(task, photos, size=2)[0]).shape == (2, 10)


def test_trunk_runs_once_on_all_tiles_as_one_batch(make_task, tiny_trunk, photos) -> None:
    task = make_task(num_permutations=10)
    model = task.build_model(tiny_trunk)
    calls: list[tuple[int, ...]] = []
    tiny_trunk.register_forward_hook(lambda module, args, output: calls.append(tuple(args[0].shape)))
    model(batch(task, photos, size=3)[0])
    assert calls == [(27, 3, 28, 28)]


def test_features_are_concatenated_in_tile_order(make_task, tiny_trunk, photos) -> None:
    """Swapping two tiles must change the logits (order matters), each puzzle only sees its own tiles."""
    task = make_task(num_permutations=10)
    model = task.build_model(tiny_trunk).eval()
    tiles, _ = batch(task, photos, size=2)
    with torch.no_grad():
        logits = model(tiles)
        swapped = tiles.clone()
        swapped[0, [0, 1]] = tiles[0, [1, 0]]
        changed = model(swapped)
    assert not torch.allclose(changed[0], logits[0])
    assert torch.allclose(changed[1], logits[1], atol=1e-6)  # the other puzzle is untouched


def test_bad_inputs_are_named(make_task, tiny_trunk) -> None:
    model = make_task(num_permutations=10).build_model(tiny_trunk)
    with pytest.raises(ValueError, match="expected tiles of shape"):
        model(torch.zeros(9, 3, 28, 28))
    with pytest.raises(ValueError, match="expected 9 tiles"):
        model(torch.zeros(1, 4, 3, 28, 28))


def test_trunk_with_wrong_input_channels_is_refused(make_task, tiny_trunk) -> None:
    gray_trunk = type(tiny_trunk)(BackboneConfig(name="tiny_test_trunk", in_channels=1))
    with pytest.raises(ValueError, match="3 input channels, not 1"):
        make_task(num_permutations=10).build_model(gray_trunk)


def test_registered_through_the_entry_point_and_described(private_cache) -> None:
    points = {point.name: point.value for point in entry_points(group="sslreg")}
    assert points.get("jigsaw") == "sslreg_jigsaw"
    registered: list[type] = []
    sslreg_jigsaw.sslreg_register(register=registered.append)
    assert registered == [Jigsaw]
    registry = Registry()
    registry.add(Jigsaw, plugin="jigsaw")
    info = Jigsaw.describe()  # default |P| = 2000, loaded from or written to the private cache
    assert info["num_permutations"] == 2000 and info["method"] == "max_avg"
    assert info["hamming_min"] >= 2 and 7.5 < info["hamming_mean"] < 9
    task = registry.build("pretext", {"name": "jigsaw"})
    assert task.complexity == ("num_permutations", 2000)
    assert (task.stats.minimum, round(task.stats.mean, 4)) == (
        info["hamming_min"],
        info["hamming_mean"],
    )


def backbone_classes() -> dict[str, type]:
    """The classes sslreg_backbones registers (through its hook, without loading every other plugin)."""
    backbones = pytest.importorskip("sslreg_backbones")
    found: list[type] = []
    backbones.sslreg_register(register=found.append)
    return {cls.name: cls for cls in found}


@pytest.mark.slow
@pytest.mark.parametrize("trunk_name", ["resnet18", "alexnet", "alexnet_jigsaw"])
def test_real_trunks(make_task, photos, trunk_name: str) -> None:
    """ResNet and AlexNet trunks from sslreg-backbones at a small tile size (slow: importing it takes seconds)."""
    classes = backbone_classes()
    if trunk_name not in classes:
        pytest.skip(f"sslreg_backbones does not register {trunk_name!r}")
    cls = classes[trunk_name]
    torch.manual_seed(0)
    trunk = cls(cls.Config(name=trunk_name))
    task = make_task(num_permutations=20, image_size=192, cell=64, tile=64)
    model = task.build_model(trunk)
    tiles, targets = batch(task, photos, size=2)
    loss = task.loss(model, tiles, targets)
    loss.backward()
    assert model(tiles).shape == (2, 20) and math.isfinite(loss.item())
    assert any(p.grad is not None for p in model.trunk.parameters())


@pytest.mark.parametrize(("size_in", "size_out"), [((6, 6), 1), ((6, 6), 2), ((7, 5), 3), ((2, 2), 4)])
def test_adaptive_pooling_equals_torchs_and_is_deterministic(size_in, size_out) -> None:
    from sslreg_jigsaw.model import AdaptiveAvgPool

    x = torch.randn(2, 3, *size_in, generator=torch.Generator().manual_seed(0), requires_grad=True)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, size_out)
    torch.testing.assert_close(AdaptiveAvgPool(size_out)(x), expected)
    grad = torch.randn_like(expected)
    torch.testing.assert_close(
        torch.autograd.grad(AdaptiveAvgPool(size_out)(x), x, grad)[0], torch.autograd.grad(expected, x, grad)[0]
    )
