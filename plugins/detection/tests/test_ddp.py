"""Two CPU processes (torchrun, gloo): the detector trains under DDP and both ranks score all test images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).parent / "ddp_worker.py"


def test_two_ranks_train_one_model_and_score_every_test_image(tmp_path: Path):
    data = {"name": "embedded_detection", "root": str(tmp_path / "d"), "num_trainval": 8, "num_test": 5, "size": 48}
    options = {
        "train": {**data, "split": "trainval"}, "test": {**data, "split": "test"}, "short_side": 48,
        "max_side": 80, "iterations": 3, "warmup_iters": 1, "batch_size": 2, "anchor_sizes": [8, 16, 32],
        "rpn_batch_size": 16, "rpn_pre_nms_train": 100, "rpn_post_nms_train": 30, "rpn_pre_nms_test": 100,
        "rpn_post_nms_test": 20, "roi_batch_size": 8, "roi_resolution": 4, "mlp_dim": 32, "layers": ["l2"],
    }  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(WORKER), str(tmp_path), json.dumps(options),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["checksums"] == ranks[1]["checksums"]  # gradients were averaged: one model on both ranks
    for payload in ranks:
        del payload["result"]["details"]["seconds"]
    assert ranks[0]["result"] == ranks[1]["result"]  # mAP, per-class APs, mean losses over the ranks
    details = ranks[0]["result"]["details"]
    assert details["test_images"] == 5  # 3 + 2 images, gathered from both ranks
    assert details["train_images"] == 8
