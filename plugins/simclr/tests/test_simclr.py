"""SimCLR: the conformance kit, the NT-Xent loss against a direct implementation, and two-view samples."""

from __future__ import annotations

import numpy as np
import sslreg_simclr
import torch
import torch.nn.functional as F
from sslreg_simclr import SimCLR, SimCLRConfig, nt_xent

from sslreg import stack
from sslreg.testing import TinyBackbone, check_plugin

SMALL = {"augment": [{"name": "RandomResizedCrop", "size": 16, "scale": [0.5, 1.0]}, "RandomHorizontalFlip"]}


def test_conformance_kit_passes():
    entries = check_plugin(sslreg_simclr)
    assert [(entry.kind, entry.name) for entry in entries] == [("pretext", "simclr")]


def test_nt_xent_matches_the_textbook_form():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 8), torch.randn(6, 8)
    loss, accuracy = nt_xent(z1, z2, 0.3)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    similarity = z @ z.T / 0.3
    expected = 0.0
    for i in range(12):
        twin = (i + 6) % 12
        others = torch.cat([similarity[i, :i], similarity[i, i + 1 :]])
        expected += -(similarity[i, twin] - torch.logsumexp(others, 0)) / 12
    torch.testing.assert_close(loss, expected)
    same, _ = nt_xent(z1, z1 + 1e-4 * torch.randn(6, 8), 0.3)
    assert same < loss  # identical twins are easy
    assert 0 <= float(accuracy) <= 100


def test_two_views_per_image_and_no_target():
    task = SimCLR(SimCLRConfig(**SMALL))
    image = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    views, target = task.make_sample(image, np.random.default_rng(1))
    assert views.shape == (2, 3, 16, 16) and target is None and not torch.equal(views[0], views[1])
    model = task.build_model(TinyBackbone())
    inputs, targets = stack([task.make_sample(image, np.random.default_rng(i)) for i in range(3)])
    out = task.loss(model, inputs, targets)
    assert out["loss"].ndim == 0 and set(out) == {"loss", "accuracy"}
