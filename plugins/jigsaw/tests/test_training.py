"""A short CPU training run on real photos: the jigsaw loss must fall clearly below chance (log|P|)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

DEMO = Path(__file__).parents[1] / "examples" / "train_cpu.py"


@pytest.mark.slow
def test_loss_falls_clearly_below_log_p(private_cache: Path) -> None:
    pytest.importorskip("skimage.data")
    spec = importlib.util.spec_from_file_location("sslreg_jigsaw_train_cpu", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = demo.train(steps=300, num_permutations=10, cache_dir=str(private_cache))
    finally:
        torch.set_num_threads(threads)
    print(f"\nstart {result['start_loss']:.3f} -> end {result['end_loss']:.3f}, log|P| = {result['log_P']:.3f}")
    assert result["start_loss"] > 0.9 * result["log_P"]  # starts at chance
    assert result["end_loss"] < 0.6 * result["log_P"]
