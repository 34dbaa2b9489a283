"""A short CPU training run on real photos (skimage's bundled images): the loss falls. Slow."""

import numpy as np
import pytest


@pytest.mark.slow
def test_loss_falls_on_photo_crops(example, tmp_path):
    pytest.importorskip("skimage")
    losses, *_ = example.train(steps=120, batch_size=16, cache_dir=tmp_path, seed=0)
    start, end = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"loss start {start:.4f} end {end:.4f}")
    assert end < 0.8 * start


@pytest.mark.slow
def test_example_writes_the_grid(example, tmp_path):
    pytest.importorskip("skimage")
    out = tmp_path / "grid.png"
    assert example.main(["--steps", "5", "--out", str(out)]) == 0
    import cv2

    assert cv2.imread(str(out)).shape == (4 * 96, 3 * 96, 3)
