"""The on-disk layout of a surface-normal dataset, shared by real data (NYUv2, converted) and the rendered demo.

::

    ROOT/
      train.txt, test.txt   sample ids, one per line ('#' comments and blank lines ignored)
      rgb/ID.png            the RGB image (.png or .jpg)
      normals/ID.png        16-bit 3-channel PNG: channel c holds round((n_c + 1) / 2 * 65535) for the unit
                            normal n = (x, y, z) in camera coordinates, channels in x, y, z order
      mask/ID.png           8-bit single-channel PNG: nonzero where the normal is valid

Camera coordinates: x to the right of the image, y up, z towards the viewer (a wall facing the camera has
n = (0, 0, 1)). 16-bit quantisation moves a normal by at most ~0.003°, far below the metrics' resolution.
In memory a target is float32 (H, W, 3): unit normals on valid pixels, zero vectors elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sslreg import atomic_write_bytes

SPLITS = ("train", "test")
RGB_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: 16-bit code of a normal component: round((n + 1) / 2 * SCALE).
SCALE = 65535.0


def encode_normals(normals: np.ndarray) -> np.ndarray:
    """Unit normals (H, W, 3) in x, y, z order to the uint16 array stored in ``normals/ID.png`` (BGR order)."""
    codes = np.rint((np.clip(normals, -1.0, 1.0) + 1.0) * (SCALE / 2.0)).astype(np.uint16)
    return np.ascontiguousarray(codes[..., ::-1])  # OpenCV writes BGR: store x, y, z as R, G, B


def decode_normals(stored: np.ndarray) -> np.ndarray:
    """The uint16 (H, W, 3) array read by OpenCV (BGR) back to float32 unit normals in x, y, z order."""
    normals = stored[..., ::-1].astype(np.float32) * np.float32(2.0 / SCALE) - np.float32(1.0)
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0.5)


def target(normals: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The in-memory target: float32 (H, W, 3), the normals where ``valid``, zero vectors elsewhere."""
    out = np.asarray(normals, dtype=np.float32).copy()
    out[~np.asarray(valid, dtype=bool)] = 0.0
    return out


def valid_mask(target_map: np.ndarray) -> np.ndarray:
    """Valid pixels of a target (non-zero normals)."""
    return np.any(target_map != 0, axis=-1)


def png_bytes(array: np.ndarray) -> bytes:
    """PNG-encode an image array (uint8 or uint16; 1 or 3 channels, BGR)."""
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise OSError(f"cannot PNG-encode an array of shape {array.shape} and dtype {array.dtype}")
    return data.tobytes()


def _write(path: Path, data: bytes, atomic: bool) -> None:
    if atomic:
        atomic_write_bytes(path, data)
    else:  # inside a private folder that is renamed into place as a whole
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_sample(
    root: Path, sample_id: str, rgb: np.ndarray, normals: np.ndarray, valid: np.ndarray, atomic: bool = True
) -> None:
    """Write one sample (RGB uint8 (H, W, 3), unit normals (H, W, 3), valid (H, W)) into the layout.

    Each file is written atomically unless ``atomic`` is False (for a private folder renamed into place whole).
    """
    if rgb.shape[:2] != normals.shape[:2] or valid.shape != normals.shape[:2]:
        raise ValueError(f"{sample_id}: rgb {rgb.shape}, normals {normals.shape} and mask {valid.shape} differ")
    _write(root / "rgb" / f"{sample_id}.png", png_bytes(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), atomic)
    _write(root / "normals" / f"{sample_id}.png", png_bytes(encode_normals(normals)), atomic)
    _write(root / "mask" / f"{sample_id}.png", png_bytes(np.where(valid, 255, 0).astype(np.uint8)), atomic)


def write_split(root: Path, split: str, ids: list[str], atomic: bool = True) -> None:
    """Write ``ROOT/<split>.txt``."""
    _write(root / f"{split}.txt", ("\n".join(ids) + "\n").encode(), atomic)


def rgb_path(root: Path, sample_id: str) -> Path:
    """``rgb/ID.png`` or ``rgb/ID.jpg``, whichever exists (the .png path when neither does)."""
    for extension in RGB_EXTENSIONS:
        path = root / "rgb" / f"{sample_id}{extension}"
        if path.is_file():
            return path
    return root / "rgb" / f"{sample_id}.png"
