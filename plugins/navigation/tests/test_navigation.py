"""The navigation evaluator end to end on a tiny budget: conformance, results per layer, determinism, and
evaluation on the same seeded episodes for every agent."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pydantic
import pytest
import sslreg_navigation
import torch
from sslreg_navigation import Navigation, NavigationConfig

from sslreg import EvalContext
from sslreg.plugins import load_plugins
from sslreg.testing import TinyBackbone, check_plugin

TINY: dict[str, Any] = dict(
    frame_size=(24, 32),
    frames=64,
    runs=2,
    n_envs=2,
    n_steps=16,
    batch_size=16,
    epochs=1,
    conv_channels=4,
    features_dim=16,
    eval_episodes=3,
    max_episode_steps=20,
)


def evaluate(context: EvalContext, **options: Any):
    torch.manual_seed(0)
    trunk = TinyBackbone().freeze()
    return Navigation(NavigationConfig(name="navigation", **{**TINY, **options})).evaluate(trunk, context)


def test_registered_through_the_entry_point() -> None:
    entry_points = [ep for ep in metadata.entry_points(group="sslreg") if ep.name == "navigation"]
    entry = load_plugins(entry_points).registry.get("evaluator", "navigation")
    assert entry.cls is Navigation and entry.distribution == "sslreg-navigation"


def test_conformance_kit_passes(gl) -> None:
    entries = check_plugin(sslreg_navigation, evaluator_options={"navigation": {**TINY, "runs": 1}})
    assert [(entry.kind, entry.name) for entry in entries] == [("evaluator", "navigation")]


def test_success_and_spl_per_layer_mean_and_std_over_runs_deterministic(gl, context: EvalContext) -> None:
    results = evaluate(context, layers=["l2"])
    assert [(r.evaluator, r.metric) for r in results] == [("navigation", "success"), ("navigation", "SPL")]
    success, spl = results
    assert list(success.layers) == list(spl.layers) == ["l2"]
    runs = success.details["per_run"]["l2"]
    assert len(runs) == 2 and all(run["train_frames"] == 64 for run in runs)
    assert success.layers["l2"].n == 2 and success.layers["l2"].std is not None
    assert success.layers["l2"].mean == pytest.approx(sum(run["success"] for run in runs) / 2)
    assert 0.0 <= spl.layers["l2"].mean <= success.layers["l2"].mean <= 100.0
    assert success.details["eval_episodes"] == 3 and "random_policy" in success.details
    again = evaluate(context, layers=["l2"])
    assert [r.layers for r in again] == [r.layers for r in results]  # same seed, same numbers on the CPU


def test_options_are_checked() -> None:
    with pytest.raises(pydantic.ValidationError, match="exceeds one rollout"):
        NavigationConfig(name="navigation", n_envs=2, n_steps=8, batch_size=64)
    with pytest.raises(pydantic.ValidationError, match="frame_size"):
        NavigationConfig(name="navigation", frame_size=(8, 2000))
    with pytest.raises(pydantic.ValidationError, match="not a MiniWorld env id: 'CartPole-v1'"):
        NavigationConfig(name="navigation", env="CartPole-v1")
