"""nyuv2_normals in a two-process gloo group (torchrun): data sharded, decoders in sync, metrics all-reduced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OPTIONS = {
    "train": {"name": "rendered_normals", "split": "train", "num_train": 8, "num_test": 5, "size": 24},
    "test": {"name": "rendered_normals", "split": "test", "num_train": 8, "num_test": 5, "size": 24},
    "iterations": 4, "runs": 1, "num_clusters": 4, "kmeans_samples": 400, "decoder_width": 8, "batch_size": 4,
}  # fmt: skip


def test_two_ranks_agree_and_cover_the_test_set_once(tmp_path, private_cache):
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", SSLREG_CACHE=str(private_cache))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(Path(__file__).parent / "ddp_worker.py"), json.dumps(OPTIONS), str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    for one, other in zip(rank0, rank1):  # the same decoders (DDP) and all-reduced metrics on both ranks
        assert one["layers"] == other["layers"]
        assert one["details"]["per_run"] == other["details"]["per_run"]
    details = rank0[0]["details"]
    assert details["test_images"] == 5 and details["test_pixels"] > 0
    folder = next((private_cache / "normals_demo").iterdir())
    valid = sum(int((plane > 0).sum()) for plane in _masks(folder))
    assert details["test_pixels"] == valid  # every valid test pixel counted exactly once over the two ranks


def _masks(folder: Path):
    import cv2

    for name in (folder / "test.txt").read_text().split():
        yield cv2.imread(str(folder / "mask" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
