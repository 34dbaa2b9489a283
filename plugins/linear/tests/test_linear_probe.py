"""linear_probe end to end on tiny in-memory data: learns, one trunk pass per batch, frozen trunk, deterministic."""

from __future__ import annotations

import math
from importlib import metadata
from typing import Any

import pydantic
import pytest
import sslreg_linear
import torch
from sslreg_linear import LinearProbe, LinearProbeConfig

from sslreg import EvalContext, EvalResult
from sslreg.plugins import load_plugins
from sslreg.testing import check_plugin

FAST = dict(epochs=4, lr_steps=[3], batch_size=8)


PROBE_KIT_OPTIONS = {"linear_probe": {"epochs": 2, "lr_steps": [1], "batch_size": 8}}


def probe(**options: Any) -> LinearProbe:
    options = {**FAST, **options}
    options.setdefault("train", {"name": "squares", "split": "train"})
    options.setdefault("test", {"name": "squares", "split": "test", "per_class": 4})
    return LinearProbe(LinearProbeConfig(name="linear_probe", **options))


def scores(results: list[EvalResult]) -> dict[str, dict[str, float]]:
    return {result.metric: {layer: score.mean for layer, score in result.layers.items()} for result in results}


def registry_of(plugin: str):
    """A registry filled by one installed plugin only (loading every plugin is slow and not ours to test)."""
    entry_points = [ep for ep in metadata.entry_points(group="sslreg") if ep.name == plugin]
    return load_plugins(entry_points).registry


def test_registered_through_the_entry_point() -> None:
    entry = registry_of("linear").get("evaluator", "linear_probe")
    assert entry.cls is LinearProbe
    assert entry.distribution == "sslreg-linear"


def test_conformance_kit_passes() -> None:
    entries = check_plugin(sslreg_linear, evaluator_options=PROBE_KIT_OPTIONS)
    assert [(entry.kind, entry.name) for entry in entries] == [("evaluator", "linear_probe")]


def test_heads_learn_an_easy_task_on_every_layer(context: EvalContext, trunk_factory) -> None:
    five = {"num_classes": 5}
    results = probe(
        train={"name": "squares", **five}, test={"name": "squares", "split": "test", "per_class": 4, **five}
    ).evaluate(trunk_factory(), context)
    got = scores(results)
    assert set(got) == {"top-1", "top-5"}
    for layer in ("l1", "l2"):
        assert 0.0 <= got["top-1"][layer] <= 100.0
        assert got["top-1"][layer] >= 80.0  # chance is 20%
        assert got["top-5"][layer] == 100.0  # 5 classes: every label is in the top 5
    assert results[0].details["train_images"] == 40
    assert results[0].details["test_images"] == 20


def test_top5_only_with_at_least_five_classes(context: EvalContext, trunk_factory) -> None:
    assert [r.metric for r in probe(epochs=1, lr_steps=[]).evaluate(trunk_factory(), context)] == ["top-1"]


def test_untrained_heads_are_near_chance_so_learning_is_what_scores(context: EvalContext, trunk_factory) -> None:
    trained = scores(probe().evaluate(trunk_factory(), context))["top-1"]
    frozen = scores(probe(lr=1e-9).evaluate(trunk_factory(), context))["top-1"]
    assert min(trained.values()) > max(frozen.values())


def test_one_trunk_pass_per_batch_for_all_layers(context: EvalContext, trunk_factory) -> None:
    trunk = trunk_factory()
    probe(layers="all", epochs=3, lr_steps=[], batch_size=5).evaluate(trunk, context)
    train_batches, test_batches = math.ceil(24 / 5), math.ceil(12 / 5)
    assert trunk.calls == 3 * train_batches + test_batches


def test_trunk_is_frozen_and_unchanged(context: EvalContext, trunk_factory) -> None:
    trunk = trunk_factory()
    trunk.train()
    before = {key: value.clone() for key, value in trunk.state_dict().items()}
    probe().evaluate(trunk, context)
    after = trunk.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)  # weights and BatchNorm statistics
    assert not trunk.training
    assert not any(p.requires_grad for p in trunk.parameters())


def test_same_seed_same_result_for_any_worker_count(context: EvalContext, trunk_factory) -> None:
    options = dict(seed=3, epochs=2, lr_steps=[1])
    first = probe(**options).evaluate(trunk_factory(), context)
    again = probe(**options).evaluate(trunk_factory(), context)
    workers = probe(**options, num_workers=2).evaluate(trunk_factory(), context)
    assert first[0].details["final_train_loss"] == again[0].details["final_train_loss"]
    assert first[0].details["final_train_loss"] == workers[0].details["final_train_loss"]
    assert scores(first) == scores(again) == scores(workers)


def test_requested_layers_only(context: EvalContext, trunk_factory) -> None:
    results = probe(layers=["l1"], batch_norm=False).evaluate(trunk_factory(), context)
    assert list(results[0].layers) == ["l1"]
    assert results[0].details["head"] == "linear"


def test_unreadable_images_are_skipped_and_counted(context: EvalContext, trunk_factory) -> None:
    results = probe(
        train={"name": "squares", "unreadable": [0, 5]},
        test={"name": "squares", "split": "test", "per_class": 4, "unreadable": [1]},
    ).evaluate(trunk_factory(), context)
    details = results[0].details
    assert details["skipped_images"] == {"train": 2, "test": 1}
    assert (details["train_images"], details["test_images"]) == (22, 11)


def test_streamed_source(context: EvalContext, trunk_factory) -> None:
    options = dict(train={"name": "streamed_squares"}, test={"name": "streamed_squares", "split": "test"})
    first = scores(probe(**options).evaluate(trunk_factory(), context))
    assert first == scores(probe(**options).evaluate(trunk_factory(), context))
    assert all(0.0 <= value <= 100.0 for value in first["top-1"].values())


def test_multilabel_data_trains_bce_heads_and_reports_map(context: EvalContext, trunk_factory) -> None:
    results = probe(
        train={"name": "multi_squares"}, test={"name": "multi_squares", "split": "test", "count": 16}
    ).evaluate(trunk_factory(), context)
    assert [r.metric for r in results] == ["mAP (multi-label)"]
    for value in scores(results)["mAP (multi-label)"].values():
        assert 80.0 <= value <= 100.0  # two easy classes; random scores give about 50


def test_one_channel_trunk_gets_the_l_channel(context: EvalContext, trunk_factory) -> None:
    got = scores(probe().evaluate(trunk_factory(in_channels=1), context))
    assert all(0.0 <= value <= 100.0 for value in got["top-1"].values())


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(test={"name": "squares", "split": "test", "num_classes": 4}), "class names"),
        (dict(test={"name": "multi_squares", "split": "test"}), "targets"),
        (dict(layers=["l9"]), "unknown layer"),
    ],
)
def test_user_mistakes_are_clear_errors(context: EvalContext, trunk_factory, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        probe(**options).evaluate(trunk_factory(), context)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(context: EvalContext, trunk_factory) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        probe(device="cuda").evaluate(trunk_factory(), context)


def test_unsupported_input_channels_stop_before_any_work(context: EvalContext, trunk_factory) -> None:
    trunk = trunk_factory(in_channels=2)
    with pytest.raises(ValueError, match="no input contract for in_channels=2"):
        probe().evaluate(trunk, context)
    assert trunk.calls == 0


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(lr_steps=[4, 2]), "strictly increasing"),
        (dict(crop_scale=(0.9, 0.2)), "crop_scale"),
        (dict(device="warp-drive"), "not a torch device"),
        (dict(momentum=0.0), "nesterov needs momentum"),
        (dict(lr=0.0), "greater than 0"),
        (dict(seed=-1), "greater than or equal to 0"),
    ],
)
def test_bad_options_are_rejected_by_the_config(options, message) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        LinearProbeConfig(name="linear_probe", **options)


def test_resnet18_all_layers(context: EvalContext) -> None:
    pytest.importorskip("sslreg_backbones")
    torch.manual_seed(0)
    trunk = registry_of("backbones").build("backbone", {"name": "resnet18"})
    results = probe(image_size=64, epochs=1, lr_steps=[], batch_size=12).evaluate(trunk, context)
    assert list(results[0].layers) == list(trunk.layer_names)
    assert all(0.0 <= score.mean <= 100.0 for score in results[0].layers.values())
