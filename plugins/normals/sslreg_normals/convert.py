"""``sslreg convert-nyuv2``: NYUv2 with the Ladicky et al. normals, as distributed in .mat files, to the normals layout.

Inputs (nothing is downloaded):

* ``--normals DIR``: the ground-truth normals of the Wang et al. / Fouhey et al. evaluation (Ladicky et al.'s
  normals for the 1449 labelled images), one MATLAB file per image named ``nm_%06d.mat`` after its 1-based NYUv2
  index, holding ``nx``, ``ny``, ``nz`` (480 x 640) and ``depthValid`` (480 x 640, nonzero = valid); the folder is
  searched recursively (e.g. ``GT_Normals/train`` and ``GT_Normals/test``). MATLAB v5 files are read with
  scipy.io, v7.3 (HDF5) files with h5py.
* ``--splits splits.mat``: the official split (``trainNdxs``: 795, ``testNdxs``: 654 1-based indices).
* ``--images``: ``nyu_depth_v2_labeled.mat`` (v7.3; dataset ``images``, 1449 x 3 x 640 x 480 as h5py reads it)
  or a folder of RGB files whose name (before the extension) is the 1-based index (``1.png``, ``0001.jpg``, ...).

Output: ``OUT/{train,test}.txt``, ``OUT/rgb/NNNN.png``, ``OUT/normals/NNNN.png``, ``OUT/mask/NNNN.png`` (layout.py),
every file written atomically. A missing or unreadable normals file or image is skipped and counted; once more than
``--max-bad-fraction`` of the samples seen (at least 50) are bad, the conversion stops with one line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sslreg_datasets import IMAGE_EXTENSIONS, BadImageCounter, read

from sslreg import UserError
from sslreg_normals.layout import write_sample, write_split

NORMAL_KEYS = ("nx", "ny", "nz", "depthValid")
NORMALS_FILE = re.compile(r"^nm_(\d+)\.mat$")


class Unreadable(Exception):
    """One input file cannot be used (the reason is the message); the sample is skipped and counted."""


def load_mat(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Variables ``keys`` of a MATLAB file, v5 (scipy.io) or v7.3 (HDF5, h5py; arrays transposed back)."""
    import scipy.io

    try:
        data = scipy.io.loadmat(path, variable_names=list(keys))
    except NotImplementedError:  # scipy's answer to v7.3 files
        data = _load_hdf5(path, keys)
    except Exception as error:  # noqa: BLE001 - any failure to parse means: unreadable
        raise Unreadable(f"{path.name}: not a readable MATLAB file ({type(error).__name__})") from None
    missing = [key for key in keys if key not in data]
    if missing:
        raise Unreadable(f"{path.name}: no variable(s) {', '.join(missing)}")
    return {key: np.asarray(data[key]) for key in keys}


def _load_hdf5(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return {key: np.asarray(handle[key]).T for key in keys if key in handle}
    except Exception as error:  # noqa: BLE001
        raise Unreadable(f"{path.name}: not a readable MATLAB v7.3 file ({type(error).__name__})") from None


def read_normals(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(unit normals (H, W, 3) float32, valid (H, W) bool) from one ``nm_*.mat`` file."""
    data = load_mat(path, NORMAL_KEYS)
    shapes = {data[key].shape for key in NORMAL_KEYS}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise Unreadable(f"{path.name}: nx, ny, nz, depthValid are not four equal 2-D arrays ({sorted(shapes)})")
    normals = np.stack([data[key].astype(np.float64) for key in NORMAL_KEYS[:3]], axis=-1)
    length = np.linalg.norm(normals, axis=-1)
    valid = (data["depthValid"] != 0) & np.isfinite(length) & (length > 0.5)
    normals = np.divide(normals, length[..., None], out=np.zeros_like(normals), where=valid[..., None])
    return normals.astype(np.float32), valid


def read_splits(path: Path) -> dict[str, list[int]]:
    """{'train': 1-based indices, 'test': ...} from the official splits.mat."""
    try:
        data = load_mat(path, ("trainNdxs", "testNdxs"))
    except Unreadable as problem:
        raise UserError(f"convert-nyuv2: --splits {str(path)!r}: {problem}") from None
    splits = {split: [int(i) for i in data[f"{split}Ndxs"].ravel()] for split in ("train", "test")}
    if set(splits["train"]) & set(splits["test"]):
        raise UserError(f"convert-nyuv2: --splits {str(path)!r}: train and test share indices")
    return splits


def normals_files(folder: Path) -> dict[int, Path]:
    """1-based index -> ``nm_%06d.mat`` file, found anywhere under ``folder``."""
    return {int(m.group(1)): p for p in sorted(folder.rglob("nm_*.mat")) if (m := NORMALS_FILE.match(p.name))}


def image_reader(source: Path) -> tuple[Callable[[int], np.ndarray], Callable[[], None]]:
    """(index -> RGB uint8 (H, W, 3), close) from nyu_depth_v2_labeled.mat or a folder of index-named images."""
    if source.is_dir():
        files = {
            int(p.stem): p
            for p in sorted(source.iterdir())
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.stem.isdigit()
        }

        def from_folder(index: int) -> np.ndarray:
            if index not in files:
                raise Unreadable(f"no image {index} in {source}")
            decoded = read(files[index])
            if decoded.image is None:
                raise Unreadable(f"{files[index].name}: {decoded.reason}")
            return decoded.image

        return from_folder, lambda: None
    import h5py

    try:
        handle = h5py.File(source, "r")
        images: Any = handle["images"]
    except (OSError, KeyError) as error:
        raise UserError(f"convert-nyuv2: --images {str(source)!r}: not nyu_depth_v2_labeled.mat ({error})") from None
    if images.ndim != 4 or images.shape[1] != 3:
        handle.close()
        raise UserError(f"convert-nyuv2: --images {str(source)!r}: 'images' has shape {images.shape}, not (N, 3, W, H)")

    def from_mat(index: int) -> np.ndarray:
        if not 1 <= index <= images.shape[0]:
            raise Unreadable(f"no image {index} in {source.name} ({images.shape[0]} images)")
        return np.ascontiguousarray(np.asarray(images[index - 1], dtype=np.uint8).transpose(2, 1, 0))

    return from_mat, handle.close


def convert(normals: Path, splits: Path, images: Path, out: Path, max_bad_fraction: float = 0.05) -> dict[str, Any]:
    """Convert every sample of both splits; returns counts and the first skipped samples with their reasons."""
    for option, path in (("--normals", normals), ("--splits", splits), ("--images", images)):
        if not path.exists():
            raise UserError(f"convert-nyuv2: {option} {str(path)!r} does not exist")
    split_indices = read_splits(splits)
    files = normals_files(normals)
    if not files:
        raise UserError(f"convert-nyuv2: --normals {str(normals)!r} holds no nm_*.mat file")
    counter = BadImageCounter(source="convert-nyuv2", max_bad_fraction=max_bad_fraction, min_seen=50)
    load_image, close = image_reader(images)
    written: dict[str, list[str]] = {}
    try:
        for split, indices in split_indices.items():
            written[split] = list(_convert_split(indices, files, load_image, out, counter))
    finally:
        close()
    counter.min_seen = 1  # the whole set is seen: check it however small
    counter.check()
    for split, ids in written.items():
        write_split(out, split, ids)
    return {"train": len(written["train"]), "test": len(written["test"]), "skipped": counter.bad,
            "examples": counter.examples}  # fmt: skip


def _convert_split(
    indices: list[int], files: dict[int, Path], load_image: Callable[[int], np.ndarray], out: Path, counter: Any
) -> Iterator[str]:
    for index in indices:
        sample_id = f"{index:04d}"
        try:
            if index not in files:
                raise Unreadable(f"no nm_{index:06d}.mat")
            normal_map, valid = read_normals(files[index])
            rgb = load_image(index)
            if rgb.shape[:2] != normal_map.shape[:2]:
                raise Unreadable(f"image {rgb.shape[:2]} and normals {normal_map.shape[:2]} differ in size")
        except Unreadable as problem:
            counter.record_bad(sample_id, str(problem))
            continue
        write_sample(out, sample_id, rgb, normal_map, valid)
        counter.record_good()
        yield sample_id


def add_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``convert-nyuv2`` on the ``sslreg`` CLI."""
    parser = subparsers.add_parser(
        "convert-nyuv2",
        help="convert NYUv2 + Ladicky normals (.mat files) into the normals layout read by the nyuv2 dataset",
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--normals", required=True, type=Path, help="folder with nm_%%06d.mat (nx, ny, nz, depthValid)")
    parser.add_argument("--splits", required=True, type=Path, help="splits.mat (trainNdxs, testNdxs)")
    parser.add_argument("--images", required=True, type=Path, help="nyu_depth_v2_labeled.mat or a folder of images")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    parser.add_argument("--max-bad-fraction", type=float, default=0.05, help="stop past this share of bad samples")
    parser.set_defaults(func=_run)
    return parser


def _run(args: argparse.Namespace) -> int:
    summary = convert(args.normals, args.splits, args.images, args.out, args.max_bad_fraction)
    print(f"convert-nyuv2: {summary['train']} train and {summary['test']} test samples in {args.out}")
    if summary["skipped"]:
        first = "; ".join(f"{key} ({reason})" for key, reason in summary["examples"][:3])
        print(f"convert-nyuv2: {summary['skipped']} skipped: {first}")
    return 0
