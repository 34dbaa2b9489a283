"""The colorization task: samples, model, loss, registration."""

import json
import pickle

import numpy as np
import pytest
import torch
from sslreg_colorization import Colorization, ColorizationConfig


@pytest.fixture()
def task(gamut_dir):
    return Colorization(
        ColorizationConfig(name="colorization", image_size=32, cache_dir=str(gamut_dir), head_channels=16)
    )


def photo(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)


def test_registered_with_complexity_k():
    from sslreg.plugins import get_registry

    entry = get_registry().get("pretext", "colorization")
    assert entry.cls is Colorization and entry.cls.input_channels == 1
    task = get_registry().build("pretext", {"name": "colorization", "num_neighbors": 40})
    assert task.complexity == ("num_neighbors", 40)


def test_default_is_zhangs_313_bins_and_313_means_all_of_them(tiny_trunk):
    task = Colorization(ColorizationConfig(name="colorization", num_neighbors=313))
    assert task.config.bins == "zhang313" and task.num_bins == 313 and task.k == 313
    model = task.build_model(tiny_trunk())  # no "exceeds" warning: K = 313 is all of the paper's bins
    assert model.head.ab_bins.shape == (313, 2)
    assert model.head.classifier[-1].out_channels == 313


def test_sslreg_info_shows_q_313(capsys):
    from sslreg.cli import main

    assert main(["info", "colorization", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["details"]["Q"] == 313 and info["details"]["bins"] == "zhang313"
    assert "b -110..100" in info["details"]["ab_range"]
    options = {row["option"]: row["default"] for row in info["options"]}
    assert options["bins"] == "zhang313" and options["resize"] == 256 and options["gray_threshold"] == 5.0


def test_srgb262_option_still_trains(gamut_dir, tiny_trunk):
    task = Colorization(
        ColorizationConfig(name="colorization", bins="srgb262", image_size=32, cache_dir=str(gamut_dir))
    )
    assert task.num_bins == 262
    model = task.build_model(tiny_trunk())
    inputs, targets = (x[None] for x in task.make_sample(photo(), np.random.default_rng(0)))
    task.set_priors(np.full(262, 1.0 / 262))
    assert model(inputs, (8, 8)).shape == (1, 262, 8, 8)
    assert torch.isfinite(task.loss(model, inputs, targets))


def test_short_side_resized_to_256_then_cropped_and_targets_point_sampled(task):
    from sslreg_colorization.colorization import random_crop, resize_short_side
    from sslreg_colorization.lab import rgb_to_lab

    image = photo()  # 40 x 50
    resized = resize_short_side(image, 256)
    assert resized.shape == (256, 320, 3)
    assert resize_short_side(resized, 256) is resized
    no_flip = Colorization(task.config.model_copy(update={"flip": False}))
    inputs, target = no_flip.make_sample(image, np.random.default_rng(3))
    crop = random_crop(resized, 32, np.random.default_rng(3))  # the same draws, in the same order
    lab = rgb_to_lab(np.ascontiguousarray(crop))
    np.testing.assert_allclose(inputs[0].numpy(), (lab[..., 0] - 50) / 50, atol=1e-5)
    # every 4th pixel, starting at the first (the reference's stride-4 1x1 convolution with weight 1)
    np.testing.assert_array_equal(target.numpy(), lab[::4, ::4, 1:].transpose(2, 0, 1))
    with pytest.raises(ValueError, match="resize"):
        ColorizationConfig(name="colorization", image_size=224, resize=200)
    as_is = Colorization(task.config.model_copy(update={"resize": None, "flip": False}))
    inputs, _ = as_is.make_sample(image, np.random.default_rng(3))
    expected = rgb_to_lab(np.ascontiguousarray(random_crop(image, 32, np.random.default_rng(3))))[..., 0]
    np.testing.assert_allclose(inputs[0].numpy(), (expected - 50) / 50, atol=1e-5)


def test_grayscale_images_are_masked_out_of_the_loss(task, tiny_trunk):
    torch.manual_seed(0)
    model = task.build_model(tiny_trunk()).eval()
    colour = task.make_sample(photo(), np.random.default_rng(0))
    gray_image = np.repeat(photo(1)[..., :1], 3, axis=2)
    gray = task.make_sample(gray_image, np.random.default_rng(0))
    assert gray[1].abs().max() <= 5  # |a|, |b| <= 5 everywhere
    task.set_priors(np.full(task.num_bins, 1.0 / task.num_bins))
    alone = task.loss(model, colour[0][None], colour[1][None])
    inputs, targets = torch.stack([colour[0], gray[0]]), torch.stack([colour[1], gray[1]])
    # the gray image's pixels weigh 0 but still count in the mean over pixels, as in the reference
    torch.testing.assert_close(task.loss(model, inputs, targets), alone / 2)
    only_gray = task.loss(model, gray[0][None], gray[1][None])
    assert only_gray.item() == 0.0
    unmasked = Colorization(task.config.model_copy(update={"gray_threshold": None}))
    unmasked.set_priors(np.full(task.num_bins, 1.0 / task.num_bins))
    assert unmasked.loss(model, gray[0][None], gray[1][None]).item() > 0


def test_config_bounds():
    with pytest.raises(ValueError, match="num_neighbors"):
        ColorizationConfig(name="colorization", num_neighbors=314)
    with pytest.raises(ValueError, match="multiple of target_stride"):
        Colorization(ColorizationConfig(name="colorization", image_size=30, target_stride=4))


def test_sample_shapes_and_determinism(task):
    inputs, target = task.make_sample(photo(), np.random.default_rng(3))
    assert inputs.shape == (1, 32, 32) and inputs.dtype == torch.float32
    assert target.shape == (2, 8, 8) and target.dtype == torch.float32
    assert -1.0 <= inputs.min() and inputs.max() <= 1.0
    again = task.make_sample(photo(), np.random.default_rng(3))
    assert torch.equal(inputs, again[0]) and torch.equal(target, again[1])


def test_small_images_are_scaled_up(task):
    inputs, target = task.make_sample(photo()[:10, :20], np.random.default_rng(0))
    assert inputs.shape == (1, 32, 32) and target.shape == (2, 8, 8)


def test_task_pickles_for_dataloader_workers(task):
    task.set_priors(np.full(task.num_bins, 1.0 / task.num_bins))
    task._tensors(torch.device("cpu"))
    clone = pickle.loads(pickle.dumps(task))
    assert clone._device_cache == {} and clone.num_bins == task.num_bins


def test_model_and_loss_backward(task, tiny_trunk):
    torch.manual_seed(0)
    model = task.build_model(tiny_trunk())
    assert model.layer == "conv3" and model.head.ab_bins.shape == (task.num_bins, 2)
    batch = [task.make_sample(photo(i), np.random.default_rng(i)) for i in range(3)]
    inputs, targets = (torch.stack(part) for part in zip(*batch))
    task.set_priors(np.full(task.num_bins, 1.0 / task.num_bins))
    loss = task.loss(model, inputs, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert loss.item() > 0
    loss.backward()
    assert model.trunk.stages["conv1"][0].weight.grad.abs().sum() > 0


def test_loss_equals_dense_cross_entropy(task, tiny_trunk):
    from sslreg_colorization.encoding import nearest_bin, soft_encode

    torch.manual_seed(0)
    model = task.build_model(tiny_trunk()).eval()
    inputs, targets = (x[None] for x in task.make_sample(photo(), np.random.default_rng(0)))
    rng = np.random.default_rng(1)
    priors = rng.random(task.num_bins)
    task.set_priors(priors / priors.sum())
    bins = torch.from_numpy(task.bins)
    dense = soft_encode(targets, bins, task.k)
    log_p = torch.log_softmax(model(inputs, (8, 8)), dim=1)
    w = torch.from_numpy(task.class_weights).float()[nearest_bin(targets, bins)]
    expected = (-(dense * log_p).sum(1) * w).mean()
    torch.testing.assert_close(task.loss(model, inputs, targets), expected)


def test_a_few_steps_on_one_batch_lower_the_loss(task, tiny_trunk):
    torch.manual_seed(0)
    model = task.build_model(tiny_trunk())
    batch = [task.make_sample(photo(i), np.random.default_rng(i)) for i in range(4)]
    inputs, targets = (torch.stack(part) for part in zip(*batch))
    task.set_priors(np.full(task.num_bins, 1.0 / task.num_bins))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = task.loss(model, inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0]


def test_three_channel_trunk_is_refused(task, example):
    trunk = example.TinyTrunk(example.TinyTrunkConfig(name="tiny_trunk", in_channels=3))
    with pytest.raises(ValueError, match="in_channels: 1"):
        task.build_model(trunk)


def test_k_above_q_uses_all_bins_with_a_warning(gamut_dir, tiny_trunk):
    task = Colorization(
        ColorizationConfig(name="colorization", num_neighbors=313, bins="srgb262", cache_dir=str(gamut_dir))
    )
    assert task.k == task.num_bins == 262
    with pytest.warns(UserWarning, match="exceeds"):
        task.build_model(tiny_trunk())


def test_resnet_trunk_from_backbones_plugin(task):
    pytest.importorskip("sslreg_backbones")
    from sslreg.plugins import get_registry

    trunk = get_registry().build("backbone", {"name": "resnet18", "in_channels": 1, "seed": 0})
    model = task.build_model(trunk)
    assert model.layer == "res5"
    inputs, targets = (x[None] for x in task.make_sample(photo(), np.random.default_rng(0)))
    task.set_priors(np.full(task.num_bins, 1.0 / task.num_bins))
    model.eval()
    assert torch.isfinite(task.loss(model, inputs, targets))


@pytest.mark.parametrize("size_in,size_out", [((2, 3), (8, 8)), ((7, 7), (56, 56)), ((9, 6), (4, 3))])
def test_resize_bilinear_matches_interpolate(size_in, size_out):
    from sslreg_colorization.model import resize_bilinear

    x = torch.randn(2, 5, *size_in, generator=torch.Generator().manual_seed(0), requires_grad=True)
    expected = torch.nn.functional.interpolate(x, size=size_out, mode="bilinear", align_corners=False)
    torch.testing.assert_close(resize_bilinear(x, size_out), expected)
    grad_out = torch.randn_like(expected)
    (grad_ref,) = torch.autograd.grad(expected, x, grad_out)
    (grad,) = torch.autograd.grad(resize_bilinear(x, size_out), x, grad_out)
    torch.testing.assert_close(grad, grad_ref)


def test_loss_runs_under_deterministic_algorithms(task, tiny_trunk):
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # the runner's default; on CUDA bilinear interpolate would refuse
    try:
        model = task.build_model(tiny_trunk())
        inputs, targets = (x[None] for x in task.make_sample(photo(), np.random.default_rng(0)))
        task.set_priors(np.full(task.num_bins, 1.0 / task.num_bins))
        task.loss(model, inputs, targets).backward()
    finally:
        torch.use_deterministic_algorithms(was)
