"""Dataset I/O throughput of sslreg-datasets, each as a ratio against a baseline timed in the same run.

1. decode(): our checked decoder (end-marker check + BGR->RGB) vs bare cv2.imdecode on the same JPEG bytes.
2. shards: streaming webdataset tar shards vs loading the same files from an image_folder.
3. embedded sources: crops / procedural images generated per index vs reading same-size JPEGs from a folder.

Run: OMP_NUM_THREADS=1 python3 benchmarks/datasets_io.py [--images 400]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import webdataset as wds
from sslreg_datasets.decode import decode
from sslreg_datasets.embedded_photos import EmbeddedPhotos, EmbeddedPhotosConfig
from sslreg_datasets.embedded_shapes import EmbeddedShapes, EmbeddedShapesConfig
from sslreg_datasets.image_folder import ImageFolder, ImageFolderConfig
from sslreg_datasets.shards import Shards, ShardsConfig


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """Fastest of ``repeats`` wall-clock runs (the machine is shared: the minimum is the least noisy)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images per measurement")
    parser.add_argument("--size", type=int, default=160, help="side of the test JPEGs")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    crops = EmbeddedPhotos(EmbeddedPhotosConfig(num_crops=args.images, crop_size=args.size))
    blobs = [cv2.imencode(".jpg", crops.load(i).image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
             for i in range(args.images)]  # fmt: skip
    n = len(blobs)

    bare = best_of(3, lambda: [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in blobs])
    ours = best_of(3, lambda: [decode(b) for b in blobs])
    print(f"decode        : bare cv2.imdecode {n / bare:8.0f} img/s | checked decode() {n / ours:8.0f} img/s"
          f" | ratio ours/bare time {ours / bare:.2f}x")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, blob in enumerate(blobs):
            (root / "folder" / f"{i // 100:03d}").mkdir(parents=True, exist_ok=True)
            (root / "folder" / f"{i // 100:03d}" / f"{i:06d}.jpg").write_bytes(blob)
        for shard in range(4):
            with wds.TarWriter(str(root / f"shard-{shard}.tar")) as sink:
                for i in range(shard, n, 4):
                    sink.write({"__key__": f"{i:06d}", "jpg": blobs[i]})
        folder = ImageFolder(ImageFolderConfig(root=str(root / "folder")))
        stream = Shards(ShardsConfig(urls=str(root / "shard-{0..3}.tar"), num_images=n))
        read_folder = best_of(3, lambda: [folder.load(i) for i in range(len(folder))])
        read_shards = best_of(3, lambda: list(stream.stream()))
        print(f"shards        : image_folder {n / read_folder:8.0f} img/s | shards stream {n / read_shards:8.0f} img/s"
              f" | ratio shards/folder time {read_shards / read_folder:.2f}x")  # fmt: skip

        photos = EmbeddedPhotos(EmbeddedPhotosConfig(num_crops=n, crop_size=96))
        shapes = EmbeddedShapes(EmbeddedShapesConfig(num_images=n, size=64))
        photos.load(0)  # decode the photographs once (cached per process), as a warm worker would have
        small = [cv2.imencode(".jpg", photos.load(i).image)[1].tobytes() for i in range(n)]
        read_small = best_of(3, lambda: [decode(b) for b in small])
        make_photos = best_of(3, lambda: [photos.load(i) for i in range(n)])
        make_shapes = best_of(3, lambda: [shapes.load(i) for i in range(n)])
        print(f"embedded      : decode 96px JPEGs {n / read_small:8.0f} img/s | embedded_photos {n / make_photos:8.0f}"
              f" img/s ({make_photos / read_small:.2f}x time) | embedded_shapes 64px {n / make_shapes:8.0f} img/s"
              f" ({make_shapes / read_small:.2f}x time)")  # fmt: skip


if __name__ == "__main__":
    main()
