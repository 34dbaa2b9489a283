"""nyuv2_normals on the kit's TinyBackbone and tiny rendered scenes: results, learning, options, mistakes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sslreg_normals.codebook import decode, kmeans_centres, labels
from sslreg_normals.decoder import DenseDecoder
from sslreg_normals.evaluator import METRICS, NormalsConfig, NyuNormals, lr_factor

from sslreg import EvalContext, UserError
from sslreg.cli import main
from sslreg.testing import TinyBackbone, check_evaluator

#: Tiny rendered scenes: 12 train / 6 test images of 32 px.
DATA = {"name": "rendered_normals", "num_train": 12, "num_test": 6, "size": 32}
QUICK = {
    "train": {**DATA, "split": "train"},
    "test": {**DATA, "split": "test"},
    "iterations": 3,
    "runs": 2,
    "num_clusters": 6,
    "kmeans_samples": 600,
    "decoder_width": 8,
    "batch_size": 4,
}


class CountingTrunk(TinyBackbone):
    """The kit's two-layer trunk, counting its forward passes."""

    calls = 0

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        self.calls += 1
        return super().forward(x, layers)


def builder(registry):
    def build(spec):
        return registry.build("dataset", spec.model_dump() if hasattr(spec, "model_dump") else dict(spec))

    return build


def evaluate(registry, tmp_path: Path, trunk=None, **options):
    torch.manual_seed(0)
    trunk = (trunk or TinyBackbone()).freeze()
    context = EvalContext(torch.device("cpu"), tmp_path / "features", 0, builder(registry))
    return NyuNormals(NormalsConfig(name="nyuv2_normals", **{**QUICK, **options})).evaluate(trunk, context)


def scores(results) -> dict[str, float]:
    """{metric: score} of a single-column result list."""
    return {r.metric: next(iter(r.layers.values())).mean for r in results}


def test_conformance_kit_one_decoder_per_layer(registry, tmp_path):
    results = check_evaluator(NyuNormals, {**QUICK, "separate_layers": True}, build_dataset=builder(registry))
    assert [(r.metric, r.higher_is_better) for r in results] == [(m, h) for _, m, h in METRICS]
    assert [r.metric for r in results] == [
        "normals mean°", "normals median°", "normals % < 11.25°", "normals % < 22.5°", "normals % < 30°",
    ]  # fmt: skip
    for result in results:
        assert set(result.layers) == {"l1", "l2"} and all(s.n == 2 for s in result.layers.values())
    details = results[0].details
    assert details["test_images"] == 6 and details["test_pixels"] > 0 and len(details["per_run"]["l1"]) == 2


def test_one_fused_decoder_is_one_column(registry, tmp_path):
    results = evaluate(registry, tmp_path, runs=1)
    assert all(list(r.layers) == ["l1+l2"] for r in results)
    values = scores(results)
    assert 0 <= values["normals median°"] <= 180
    assert values["normals % < 11.25°"] <= values["normals % < 22.5°"] <= values["normals % < 30°"] <= 100


@pytest.mark.parametrize("formulation", ["classification", "regression"])
def test_the_decoder_learns(registry, tmp_path, formulation):
    """Tested on its own training scenes: training lowers the median error well below an untrained decoder's."""
    same = {"train": {**DATA, "split": "train"}, "test": {**DATA, "split": "train"}, "runs": 1}
    options = {**same, "formulation": formulation, "num_clusters": 20, "lr": 0.05, "decoder_width": 16}
    untrained = scores(evaluate(registry, tmp_path, iterations=1, lr=1e-9, **{k: v for k, v in options.items()
                                                                            if k != "lr"}))  # fmt: skip
    trained = scores(evaluate(registry, tmp_path, iterations=60, **options))
    assert trained["normals median°"] < untrained["normals median°"] - 5, (trained, untrained)
    assert trained["normals mean°"] < untrained["normals mean°"]


def test_the_decoder_ignores_the_scale_and_offset_of_each_frozen_channel():
    """Frozen taps are standardised per channel first: a trunk whose channels are 100x larger or far off centre
    (a pretrained trunk's, against a random one's) gives the same training outputs, so the same probe."""
    torch.manual_seed(0)
    decoder = DenseDecoder({"a": 4, "b": 6}, {"a": 4, "b": 8}, 8, 5).train()
    features = {"a": torch.randn(3, 4, 8, 8), "b": torch.randn(3, 6, 4, 4)}
    scale = {"a": torch.tensor([100.0, 0.5, 1.0, 7.0]), "b": torch.logspace(0, 3, 6)}
    shifted = {tap: value * scale[tap].view(1, -1, 1, 1) + 30.0 for tap, value in features.items()}
    expected = decoder(features, (32, 32), (32, 32))
    assert torch.allclose(decoder(shifted, (32, 32), (32, 32)), expected, atol=1e-3)


def test_same_seed_same_result(registry, tmp_path):
    first = evaluate(registry, tmp_path, runs=1)
    second = evaluate(registry, tmp_path, runs=1)
    assert scores(first) == scores(second)


def test_cached_features_run_the_trunk_once_per_image(registry, tmp_path):
    trunk = CountingTrunk()
    results = evaluate(registry, tmp_path, trunk=trunk, cache_features=True, iterations=7, test_batch_size=4)
    assert trunk.calls == math.ceil(12 / 4) + math.ceil(6 / 4)  # not iterations x runs
    assert all(math.isfinite(s.mean) for r in results for s in r.layers.values())


@pytest.mark.parametrize("cache", [False, True])
def test_scaled_inputs_are_scored_at_ground_truth_size(registry, tmp_path, cache):
    results = evaluate(registry, tmp_path, cache_features=cache, scale=0.5, runs=1)
    assert results[0].details["test_pixels"] > 6 * 16 * 16  # pixels of the 32 px ground truth, not the 16 px input


def test_unreadable_test_samples_are_counted_then_stop(registry, tmp_path, make_folder):
    root = tmp_path / "nyu"
    make_folder(root, {"train": 6, "test": 8}, size=(16, 16))
    (root / "normals" / "test003.png").write_bytes(b"")
    data = {"name": "nyuv2", "root": str(root)}
    options = {"train": {**data, "split": "train"}, "runs": 1}
    results = evaluate(registry, tmp_path, test={**data, "split": "test", "max_bad_fraction": 0.2}, **options)
    assert results[0].details["skipped_images"] == {"test": 1} and results[0].details["test_images"] == 7
    with pytest.raises(UserError, match=r"1 of 8 test samples of 'nyuv2' unreadable") as caught:
        evaluate(registry, tmp_path, test={**data, "split": "test", "max_bad_fraction": 0.1}, **options)
    assert "\n" not in str(caught.value)


def test_data_without_normals_is_a_clear_error(registry, tmp_path):
    with pytest.raises(UserError, match="'embedded_shapes' has 'multilabel' targets; it needs normals"):
        evaluate(registry, tmp_path, train={"name": "embedded_shapes", "num_images": 4, "size": 32})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cache_features": True, "crop_size": 16}, "cache_features needs fixed training inputs"),
        ({"warmup_iters": 5, "iterations": 5}, "warmup_iters"),
        ({"lr_steps": [5, 3]}, "strictly increasing"),
        ({"formulation": "bins"}, "classification"),
    ],
)
def test_bad_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        NormalsConfig(name="nyuv2_normals", **options)


def test_learning_rate_schedules():
    config = NormalsConfig(name="nyuv2_normals", iterations=100, warmup_iters=10)
    assert lr_factor(config, 0) == pytest.approx(1 / 11) and lr_factor(config, 10) == 1.0
    assert lr_factor(config, 55) == pytest.approx(0.5**0.9)
    cosine = config.model_copy(update={"schedule": "cosine", "warmup_iters": 0})
    assert lr_factor(cosine, 50) == pytest.approx(0.5) and lr_factor(cosine, 100) == pytest.approx(0.0)
    step = config.model_copy(update={"schedule": "step", "lr_steps": [30, 60], "warmup_iters": 0})
    assert [lr_factor(step, i) for i in (29, 30, 60)] == pytest.approx([1.0, 0.1, 0.01])


def test_codebook_centres_labels_and_decoding():
    rng = np.random.default_rng(0)
    axes = np.eye(3, dtype=np.float32)
    normals = np.repeat(axes, 200, axis=0) + rng.normal(scale=0.05, size=(600, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    centres = kmeans_centres(normals, 3, seed=0)
    assert np.allclose(np.linalg.norm(centres, axis=1), 1.0)
    assert sorted(np.abs(centres @ axes.T).argmax(axis=1).tolist()) == [0, 1, 2]
    centres_t = torch.from_numpy(centres)
    target = torch.tensor([[1.0, 0.1, 0.0], [0.0, 0.0, 0.0], [0.0, 0.2, 1.0]]).T.reshape(1, 3, 1, 3)
    got = labels(target, centres_t)[0, 0].tolist()
    assert got[1] == -1 and centres[got[0]].argmax() == 0 and centres[got[2]].argmax() == 2
    logits = torch.full((1, 3, 1, 2), -50.0)
    logits[0, 1, 0, 0] = 50.0  # one-hot: the centre itself
    logits[0, :2, 0, 1] = 0.0  # two centres equally likely: their normalised bisector
    out = decode(logits, centres_t)[0, :, 0]
    assert torch.allclose(out[:, 0], centres_t[1], atol=1e-5)
    bisector = torch.nn.functional.normalize(centres_t[0] + centres_t[1], dim=0)
    assert torch.allclose(out[:, 1], bisector, atol=1e-5)


def test_too_few_distinct_normals_for_the_codebook():
    with pytest.raises(UserError, match="fewer than num_clusters=40"):
        kmeans_centres(np.tile(np.eye(3, dtype=np.float32), (50, 1)), 40, seed=0)


def test_sslreg_run_in_a_sweep_writes_the_standard_table(tmp_path, capsys):
    config = {
        "name": "normals_sweep",
        "work_dir": str(tmp_path / "runs"),
        "seed": 0,
        "backbone": {"name": "resnet18"},
        "evaluate": [{"name": "nyuv2_normals", "layers": ["res2", "res3"], **{**QUICK, "runs": 1}}],
        "sweep": {"backbone.seed": [0, 1]},
    }
    path = tmp_path / "normals.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    grid = (tmp_path / "runs" / "sweep_results.md").read_text()
    runs = sorted((tmp_path / "runs").glob("*/results.md"))
    assert len(runs) == 2
    for _, metric, higher in METRICS:
        assert f"**nyuv2_normals: {metric}**" in grid
        assert f"**nyuv2_normals: {metric}** ({'↑' if higher else '↓'})" in runs[0].read_text()
    assert "| backbone.seed | res2+res3 |" in grid and "\n| 1 | " in grid
