"""Real trunk features for the SVM benchmark: a ResNet-18's pooled layer on the embedded labelled shapes.

Two trunks: randomly initialised (seed 0) and Jigsaw-pretrained on the embedded shapes (the ``trunk.pth`` that
``sslreg run configs/shapes/jigsaw.yaml`` writes). Features are extracted once through sslreg's own extraction
(one pass, pooled as the benchmark protocol pools them) and cached on disk, like the evaluators do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sslreg import extract_features, get_registry


def trunk_features(
    rows: int, test_rows: int, weights: Path | None, layer: str, cache_dir: Path, image_size: int = 96
) -> tuple[dict[str, np.ndarray], str]:
    """(train/test features and devkit labels of the embedded shapes, a description) for one trunk and layer."""
    registry = get_registry()
    options: dict[str, object] = {"name": "resnet18", "seed": 0}
    if weights is not None:
        options["weights"] = str(weights)
    torch.manual_seed(0)
    trunk = registry.build("backbone", options).freeze()
    arrays: dict[str, np.ndarray] = {}
    for split, count in (("train", rows), ("test", test_rows)):
        dataset = registry.build(
            "dataset", {"name": "embedded_shapes", "split": split, "num_images": count, "size": 64}
        )
        extracted = extract_features(trunk, dataset, [layer], image_size=image_size, batch_size=64, cache_dir=cache_dir)
        arrays[f"{split}_features"] = np.asarray(extracted.features[layer], dtype=np.float32)
        arrays[f"{split}_labels"] = np.asarray(extracted.targets, dtype=np.int8)
    name = "jigsaw" if weights is not None else "random"
    return arrays, f"resnet18 {name} {layer}"
