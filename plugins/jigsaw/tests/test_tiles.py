"""The tile pipeline: geometry, the shuffle convention, augmentation, normalisation, config validation."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
import torch
from sslreg_jigsaw import JigsawConfig
from sslreg_jigsaw import tiles as T

PLAIN = {
    "grayscale_prob": 0.0,
    "color_jitter": 0.0,
    "channel_shift": 0,
    "normalize": "none",
}


def test_shuffle_convention_and_exact_inverse() -> None:
    tiles = np.arange(9)[:, None] * np.ones((9, 4))
    perm = np.array([2, 0, 1, 5, 3, 4, 8, 6, 7])
    shuffled = T.shuffle(tiles, perm)
    assert [shuffled[i, 0] for i in range(9)] == perm.tolist()  # shuffled[i] = tiles[perm[i]]
    np.testing.assert_array_equal(T.unshuffle(shuffled, perm), tiles)


def test_unshuffle_with_target_recovers_the_image_exactly(make_task, photos) -> None:
    """tile == cell and no augmentation: the unshuffled tiles tile the crop with no gap and no change."""
    task = make_task(num_permutations=100, tile=32, **PLAIN)
    image = np.ascontiguousarray(photos[0][:96, :96])  # already image_size: no resize, crop at (0, 0)
    seen = set()
    for seed in range(5):
        tiles, target = task.make_sample(image, np.random.default_rng(seed))
        assert tiles.shape == (9, 3, 32, 32) and tiles.dtype == torch.float32 and target.dtype == torch.long
        seen.add(int(target))
        grid = T.unshuffle(tiles.numpy(), task.permutations[int(target)])
        rebuilt = T.assemble(grid.transpose(0, 2, 3, 1), 3)
        np.testing.assert_allclose(rebuilt * 255.0, image, atol=1e-3)
        assert not np.allclose(T.assemble(tiles.numpy().transpose(0, 2, 3, 1), 3) * 255.0, image)
    assert len(seen) > 1


def test_each_unshuffled_tile_lies_inside_its_own_cell(make_task, photos) -> None:
    """tile < cell: after unshuffling, tile k is found at some offset inside grid cell k and nowhere else."""
    task = make_task(num_permutations=50, tile=28, **PLAIN)
    image = np.ascontiguousarray(photos[1][:96, 20:116]).astype(np.float32)
    tiles, target = task.make_sample(image.astype(np.uint8), np.random.default_rng(4))
    grid = T.unshuffle(tiles.numpy().transpose(0, 2, 3, 1) * 255.0, task.permutations[int(target)])

    def found_in(tile: np.ndarray, cell_index: int) -> bool:
        top, left = (cell_index // 3) * 32, (cell_index % 3) * 32
        return any(
            np.allclose(image[top + y : top + y + 28, left + x : left + x + 28], tile, atol=1e-3)
            for y in range(5)
            for x in range(5)
        )

    for k in range(9):
        assert found_in(grid[k], k)
        assert not any(found_in(grid[k], other) for other in range(9) if other != k)


def test_same_rng_same_sample_and_all_randomness_from_rng(make_task, photos) -> None:
    task = make_task(num_permutations=100)
    first = task.make_sample(photos[2], np.random.default_rng(9))
    np.random.seed(123)  # the global RNG must not matter
    torch.manual_seed(5)
    second = task.make_sample(photos[2], np.random.default_rng(9))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    third = task.make_sample(photos[2], np.random.default_rng(10))
    assert not torch.equal(first[0], third[0])


@pytest.mark.parametrize("mode,axes", [("channel", (2, 3)), ("tile", (1, 2, 3))])
def test_each_tile_is_normalised_on_its_own(make_task, photos, mode: str, axes: tuple[int, ...]) -> None:
    tiles, _ = make_task(num_permutations=10, normalize=mode).make_sample(photos[3], np.random.default_rng(0))
    np.testing.assert_allclose(tiles.mean(dim=axes).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(tiles.std(dim=axes, unbiased=False).numpy(), 1.0, atol=1e-3)


def test_flat_tiles_do_not_divide_by_zero() -> None:
    flat = np.full((9, 3, 8, 8), 77.0, dtype=np.float32)
    out = T.normalise(flat, "channel")
    assert np.isfinite(out).all() and np.abs(out).max() == 0.0


def test_grayscale_probability_one_makes_every_tile_gray(make_task, photos) -> None:
    tiles, _ = make_task(num_permutations=10, grayscale_prob=1.0, normalize="tile").make_sample(
        photos[0], np.random.default_rng(1)
    )
    np.testing.assert_allclose(tiles[:, 0].numpy(), tiles[:, 1].numpy(), atol=1e-5)
    np.testing.assert_allclose(tiles[:, 1].numpy(), tiles[:, 2].numpy(), atol=1e-5)


def test_colour_jitter_is_per_tile_and_matches_sequential_colorjitter() -> None:
    rng = np.random.default_rng(0)
    source = rng.uniform(60, 190, size=(9, 3, 6, 6)).astype(np.float32)
    out = T.augment_colour(source.copy(), np.random.default_rng(1), 0.0, 0.3)
    b, c, s = np.random.default_rng(1).uniform(0.7, 1.3, size=(3, 9, 1, 1, 1))
    x = b * source.astype(np.float64)
    x = c * x + (1 - c) * T.luma(x).mean(axis=(1, 2)).reshape(9, 1, 1, 1)
    x = s * x + (1 - s) * T.luma(x)[:, None]
    np.testing.assert_allclose(out, np.clip(x, 0, 255), atol=1e-3)
    assert len({round(float(v), 3) for v in (out / source).mean(axis=(1, 2, 3))}) == 9  # per tile factors


def test_channel_shift_moves_channels_within_the_cell(photos) -> None:
    image = photos[0][:96, :96]
    plain = T.cut_tiles(image, 3, 32, 28, np.random.default_rng(0))
    shifted = T.cut_tiles(image, 3, 32, 28, np.random.default_rng(0), channel_shift=2)
    assert plain.shape == shifted.shape == (9, 28, 28, 3)
    assert not np.array_equal(plain, shifted)
    assert np.array_equal(
        T.cut_tiles(image, 3, 32, 32, np.random.default_rng(0), channel_shift=2)[0],
        image[:32, :32],
    )


def test_resize_and_crop_gives_a_square_of_the_requested_size(photos) -> None:
    rng = np.random.default_rng(0)
    for image in photos + [
        np.zeros((600, 1000, 3), np.uint8),
        np.zeros((40, 50, 3), np.uint8),
    ]:
        assert T.resize_and_crop(image, 96, rng).shape == (96, 96, 3)


def test_gray_and_rgba_inputs_are_accepted_and_bad_ones_named() -> None:
    assert T.as_rgb(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert T.as_rgb(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    with pytest.raises(ValueError, match="uint8"):
        T.as_rgb(np.zeros((5, 6, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        T.as_rgb(np.zeros((5, 6, 2), np.uint8))


@pytest.mark.parametrize(
    "options,message",
    [
        (
            {"tile": 40, "cell": 32, "image_size": 96},
            r"tile \(40\) must be <= cell \(32\)",
        ),
        (
            {"tile": 28, "cell": 40, "image_size": 96},
            r"grid \* cell \(3 x 40 = 120\) must be <= image_size \(96\)",
        ),
        (
            {
                "grid": 2,
                "num_permutations": 25,
                "image_size": 64,
                "cell": 32,
                "tile": 28,
            },
            r"must be <= 4! = 24",
        ),
        ({"num_permutations": 10001}, "less than or equal to 10000"),
        ({"num_permutations": 1}, "greater than or equal to 2"),
        ({"method": "max_sum"}, "max_avg"),
    ],
)
def test_config_errors_name_the_option(options: dict, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        JigsawConfig(**options)


def test_a_two_by_two_grid_works(make_task, photos) -> None:
    task = make_task(grid=2, num_permutations=24, image_size=64, cell=32, tile=28)
    assert sorted(map(tuple, task.permutations.tolist())) == sorted(set(map(tuple, task.permutations.tolist())))
    tiles, target = task.make_sample(photos[0], np.random.default_rng(0))
    assert tiles.shape == (4, 3, 28, 28) and 0 <= int(target) < 24
