"""convert-nyuv2 on tiny files in the exact formats of the NYUv2 release: nm_%06d.mat (v5 and v7.3), splits.mat,
nyu_depth_v2_labeled.mat (HDF5) or a folder of images."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io
from sslreg_normals.convert import convert, load_mat
from sslreg_normals.nyuv2 import NormalsFolder, NormalsFolderConfig

from sslreg import UserError
from sslreg.cli import main

HEIGHT, WIDTH = 6, 8


def matlab_73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file: HDF5 after a 512-byte MATLAB header, arrays stored transposed (column-major)."""
    with h5py.File(path, "w", userblock_size=512) as handle:
        for key, value in arrays.items():
            handle[key] = np.ascontiguousarray(value.T)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as handle:
        handle.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02IM")


def normal_maps(index: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(index)
    normals = rng.normal(size=(HEIGHT, WIDTH, 3))
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    valid = rng.random((HEIGHT, WIDTH)) < 0.7
    return normals, valid


def nm_arrays(index: int) -> dict[str, np.ndarray]:
    normals, valid = normal_maps(index)
    return {"nx": normals[..., 0], "ny": normals[..., 1], "nz": normals[..., 2], "depthValid": valid.astype(np.uint8)}


def rgb(index: int) -> np.ndarray:
    return np.random.default_rng(100 + index).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


@pytest.fixture
def release(tmp_path: Path) -> dict[str, Path]:
    """Indices 1-6: train 1-4, test 5-6; 3's normals file is corrupt, 4's is v7.3, 6's is missing."""
    normals = tmp_path / "GT_Normals"
    (normals / "train").mkdir(parents=True)
    (normals / "test").mkdir()
    for index in (1, 2, 5):
        folder = normals / ("train" if index < 5 else "test")
        scipy.io.savemat(folder / f"nm_{index:06d}.mat", nm_arrays(index))
    (normals / "train" / "nm_000003.mat").write_bytes(b"MATLAB 5.0 MAT-file, garbage" + b"\0" * 200)
    matlab_73(normals / "train" / "nm_000004.mat", nm_arrays(4))
    scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [2], [3], [4]]), "testNdxs": [[5], [6]]})
    labeled = tmp_path / "nyu_depth_v2_labeled.mat"
    images = np.stack([rgb(index).transpose(2, 1, 0) for index in range(1, 7)])  # (N, 3, W, H), as h5py reads it
    matlab_73(labeled, {"images": images.T})  # stored transposed, read back as (N, 3, W, H)
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(1, 7):
        cv2.imwrite(str(folder / f"{index:04d}.png"), cv2.cvtColor(rgb(index), cv2.COLOR_RGB2BGR))
    return {"normals": normals, "splits": tmp_path / "splits.mat", "labeled": labeled, "folder": folder}


def test_v73_files_are_read_through_h5py(release):
    arrays = load_mat(release["normals"] / "train" / "nm_000004.mat", ("nx", "depthValid"))
    assert np.allclose(arrays["nx"], nm_arrays(4)["nx"])
    with h5py.File(release["labeled"], "r") as handle:
        assert handle["images"].shape == (6, 3, WIDTH, HEIGHT)


@pytest.mark.parametrize("images", ["labeled", "folder"])
def test_convert_writes_the_layout_and_skips_bad_samples(tmp_path, release, images):
    out = tmp_path / "nyu"
    summary = convert(release["normals"], release["splits"], release[images], out, max_bad_fraction=0.5)
    assert (summary["train"], summary["test"], summary["skipped"]) == (3, 1, 2)
    reasons = dict(summary["examples"])
    assert "not a readable MATLAB file" in reasons["0003"] and "no nm_000006.mat" in reasons["0006"]
    assert (out / "train.txt").read_text().split() == ["0001", "0002", "0004"]
    source = NormalsFolder(NormalsFolderConfig(root=str(out), split="train"))
    for position, index in enumerate((1, 2, 4)):
        sample = source.load(position)
        normals, valid = normal_maps(index)
        assert sample.key == f"{index:04d}" and np.array_equal(sample.image, rgb(index))
        got = sample.target
        assert np.array_equal(np.any(got != 0, axis=-1), valid)
        cosine = np.sum(got[valid] * normals[valid], axis=-1)
        assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).max() < 0.05


def test_too_many_bad_samples_is_one_line(tmp_path, release):
    with pytest.raises(UserError, match=r"convert-nyuv2.*2 of 6 images unreadable") as caught:
        convert(release["normals"], release["splits"], release["labeled"], tmp_path / "out", max_bad_fraction=0.1)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out" / "train.txt").exists()


def test_command_line(tmp_path, release, capsys):
    args = ["convert-nyuv2", "--normals", str(release["normals"]), "--splits", str(release["splits"]),
            "--images", str(release["labeled"]), "--out", str(tmp_path / "nyu"),
            "--max-bad-fraction", "0.5"]  # fmt: skip
    assert main(args) == 0
    assert "3 train and 1 test samples" in capsys.readouterr().out
    args[args.index("--splits") + 1] = str(tmp_path / "missing.mat")
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"sslreg: error: convert-nyuv2: --splits '{tmp_path / 'missing.mat'}' does not exist"
    ]
