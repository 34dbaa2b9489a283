"""The ``sslreg colorize`` command, from a checkpoint in sslreg's format."""

import argparse

import cv2
import numpy as np
import pytest
import sslreg_colorization
import torch
from sslreg_colorization import Colorization, ColorizationConfig


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="sslreg")
    sslreg_colorization.sslreg_commands(subparsers=root.add_subparsers(dest="command"))
    return root


def run(*argv: str) -> int:
    args = parser().parse_args(["colorize", *argv])
    return args.func(args)


@pytest.fixture()
def checkpoint(tmp_path, gamut_dir, tiny_trunk, save_checkpoint):
    backbone = {"name": "tiny_trunk", "in_channels": 1, "width": 8, "seed": 0}
    pretext = {"name": "colorization", "image_size": 32, "head_channels": 8, "cache_dir": str(gamut_dir)}
    task = Colorization(ColorizationConfig(**pretext))
    torch.manual_seed(0)
    model = task.build_model(tiny_trunk(width=8))
    assert all(key.split(".")[0] in ("trunk", "head") for key in model.state_dict())
    return save_checkpoint(tmp_path / "colorization.pth", model, backbone, pretext)


@pytest.fixture()
def image_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for index, shape in enumerate([(40, 60, 3), (50, 30, 3)]):
        path = tmp_path / f"image{index}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, size=shape, dtype=np.uint8))
        paths.append(str(path))
    return paths


def test_writes_a_grid_of_the_expected_size(checkpoint, image_files, tmp_path, capsys):
    out = tmp_path / "grid" / "out.png"
    assert run(str(checkpoint), *image_files, "--out", str(out), "--size", "24") == 0
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * 24, 3 * 24, 3)
    gray = grid[:24, :24].astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1  # first column is grayscale
    assert "wrote" in capsys.readouterr().out


def test_default_size_is_the_task_image_size(checkpoint, image_files, tmp_path):
    out = tmp_path / "out.png"
    assert run(str(checkpoint), image_files[0], "--out", str(out)) == 0
    assert cv2.imread(str(out)).shape == (32, 96, 3)


def test_ground_truth_column_is_the_image(checkpoint, image_files, tmp_path):
    from sslreg_colorization.colorize import center_square, colorize_grid, read_image

    grid = colorize_grid(checkpoint, [image_files[1]], size=16, temperature=0.38)
    np.testing.assert_array_equal(grid[:, 32:], center_square(read_image(image_files[1]), 16))


@pytest.mark.parametrize("which", ["checkpoint", "image"])
def test_bad_paths_give_one_line_and_exit_code_2(checkpoint, image_files, tmp_path, capsys, which):
    argv = [str(tmp_path / "missing.pth"), *image_files] if which == "checkpoint" else [str(checkpoint), "nope.jpg"]
    assert run(*argv, "--out", str(tmp_path / "o.png")) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "does not exist" in error
    assert not (tmp_path / "o.png").exists()


def test_checkpoint_of_another_task_is_refused(tmp_path, image_files, tiny_trunk, capsys):
    path = tmp_path / "jigsaw.pth"
    torch.save(
        {"state_dict": {}, "meta": {"config": {"pretrain": {"backbone": {}, "pretext": {"name": "jigsaw"}}}}}, path
    )
    assert run(str(path), image_files[0]) == 2
    assert "not colorization" in capsys.readouterr().err
    torch.save({"weights": {}}, path)
    assert run(str(path), image_files[0]) == 2
    assert "not an sslreg pretraining checkpoint" in capsys.readouterr().err
    path.write_bytes(b"not a checkpoint")
    assert run(str(path), image_files[0]) == 2
    assert "could not be loaded" in capsys.readouterr().err


def test_backbone_in_channels_left_at_default_is_overridden(checkpoint, image_files, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["meta"]["config"]["pretrain"]["backbone"]["in_channels"] = 3  # what a dumped experiment config holds
    torch.save(state, checkpoint)
    assert run(str(checkpoint), image_files[0], "--out", str(tmp_path / "o.png")) == 0


def test_unknown_backbone_is_a_one_line_error(checkpoint, image_files, capsys):
    state = torch.load(checkpoint, weights_only=True)
    state["meta"]["config"]["pretrain"]["backbone"]["name"] = "no_such_trunk"
    torch.save(state, checkpoint)
    assert run(str(checkpoint), image_files[0]) == 2
    error = capsys.readouterr().err
    assert error.startswith("sslreg: error:") and "no_such_trunk" in error and error.count("\n") == 1


def test_a_checkpoint_from_before_the_bins_option_loads_with_its_262_bins(
    tmp_path, gamut_dir, tiny_trunk, save_checkpoint, image_files
):
    from sslreg_colorization.colorize import load_colorizer

    old = {"name": "colorization", "image_size": 32, "head_channels": 8, "cache_dir": str(gamut_dir)}
    task = Colorization(ColorizationConfig(**old, bins="srgb262"))  # the only set there was
    torch.manual_seed(0)
    model = task.build_model(tiny_trunk(width=8))
    backbone = {"name": "tiny_trunk", "in_channels": 1, "width": 8, "seed": 0}
    path = save_checkpoint(tmp_path / "old.pth", model, backbone, old)  # its config has no 'bins'
    loaded, _ = load_colorizer(path)
    assert loaded.config.bins == "srgb262" and loaded.num_bins == 262
    assert run(str(path), image_files[0], "--out", str(tmp_path / "o.png")) == 0


def test_a_head_that_disagrees_with_its_config_is_refused(tmp_path, gamut_dir, tiny_trunk, save_checkpoint, capsys):
    pretext = {"name": "colorization", "image_size": 32, "head_channels": 8, "cache_dir": str(gamut_dir)}
    model = Colorization(ColorizationConfig(**pretext, bins="srgb262")).build_model(tiny_trunk(width=8))
    backbone = {"name": "tiny_trunk", "in_channels": 1, "width": 8, "seed": 0}
    path = save_checkpoint(tmp_path / "odd.pth", model, backbone, {**pretext, "bins": "zhang313"})
    from sslreg_colorization.colorize import load_colorizer

    with pytest.raises(ValueError, match="head over 262 ab bins, but its config says bins: zhang313"):
        load_colorizer(path)
