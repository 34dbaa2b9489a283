"""The conformance kit itself: its dataset and evaluator checks pass good components and catch broken ones."""

from __future__ import annotations

import importlib.util
import types
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

from sslreg import (
    DatasetConfig,
    DatasetSource,
    EvalContext,
    EvalResult,
    Evaluator,
    LabeledDataConfig,
    LayerScore,
    Sample,
    hookimpl,
)
from sslreg.testing import TinyLabeled, check_component, check_dataset, check_evaluator, check_plugin


class CountConfig(DatasetConfig):
    name: str = "count"
    count: int = Field(description="How many images (required).")
    flaw: str = Field("", description="Which mistake to make (for the kit's own tests).")


class Count(DatasetSource):
    """Image i is filled with the value i; ``flaw`` breaks one rule of the contract."""

    name: ClassVar[str] = "count"
    Config: ClassVar[type[CountConfig]] = CountConfig
    config: CountConfig

    @classmethod
    def check(cls, config: CountConfig) -> list[str]:  # type: ignore[override]
        if config.flaw == "check_type":
            return "count: fine"  # type: ignore[return-value]
        return ["count: must be positive"] if config.count < 1 else []

    def __len__(self) -> int:
        return self.config.count

    def load(self, index: int) -> Sample | None:
        flaw = self.config.flaw
        value = index + (np.random.randint(1, 100) if flaw == "random" else 0)
        image = np.full((4, 5, 3), value, np.uint8)
        if flaw == "float":
            image = image.astype(np.float32)
        if flaw == "grey":
            image = image[..., 0]
        return Sample(image, None, f"k{index}")

    def stream(self, part: int = 0, num_parts: int = 1, epoch: int = 0):
        if self.config.flaw == "overlap":  # splits by something else than part: reads too much
            return (self.load(i) for i in range(max(0, part - 1), len(self), num_parts))
        if self.config.flaw == "lossy":
            return (self.load(i) for i in range(part, len(self) - (num_parts > 1), num_parts))
        return super().stream(part, num_parts, epoch)


def test_check_dataset_passes_a_good_source_and_required_options() -> None:
    check_component(Count)  # 'count' has no default: allowed
    check_dataset(Count, {"count": 7})
    check_dataset(Count(CountConfig(count=2)))


@pytest.mark.parametrize(
    "flaw, message",
    [
        ("random", "load\\(0\\) twice gives different pixels"),
        ("float", "must be RGB uint8 \\(H, W, 3\\), got float32"),
        ("grey", "must be RGB uint8 \\(H, W, 3\\), got uint8 \\(4, 5\\)"),
        ("overlap", "stream\\(part, 2\\) parts are not disjoint and complete"),
        ("lossy", "stream\\(part, 2\\) parts are not disjoint and complete: 6 samples over the parts, 7"),
        ("check_type", "check\\(config\\) must return a list of str"),
    ],
)
def test_check_dataset_catches_broken_sources(flaw: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_dataset(Count, {"count": 7, "flaw": flaw})


def test_check_dataset_needs_data() -> None:
    with pytest.raises(AssertionError, match="check\\(config\\) finds problems with a fixture that builds"):
        check_dataset(Count, {"count": 0})


def test_check_component_needs_descriptions() -> None:
    class Bare(DatasetConfig):
        name: str = "bare"
        root: str

    cls = type("BareSource", (Count,), {"__doc__": "Bare.", "name": "bare", "Config": Bare})
    with pytest.raises(AssertionError, match="bare.root: add description="):
        check_component(cls)


class ProbeConfig(LabeledDataConfig):
    flaw: str = Field("", description="Which mistake to make.")


class MeanProbe(Evaluator):
    """Scores each layer by its mean activation on the test data (a stand-in evaluator)."""

    name: ClassVar[str] = "mean_probe"
    Config: ClassVar[type[ProbeConfig]] = ProbeConfig
    config: ProbeConfig

    def evaluate(self, backbone: Any, context: EvalContext) -> list[EvalResult]:
        import torch

        train, test = context.build_dataset(self.config.train), context.build_dataset(self.config.test)
        assert isinstance(train, TinyLabeled) and train.config.split == "train" and test.config.split == "test"
        layers = backbone.resolve_layers(self.config.layers)
        images = torch.stack([torch.as_tensor(test.load(i).image).permute(2, 0, 1).float() / 255 for i in range(4)])
        with torch.no_grad():
            features = backbone(images, layers)
        scores = {layer: LayerScore(mean=float(value.mean())) for layer, value in features.items()}
        if self.config.flaw == "nan":
            scores[layers[0]] = LayerScore(mean=float("nan"))
        if self.config.flaw == "missing":
            scores.pop(layers[-1])
        if self.config.flaw == "touch":
            next(backbone.parameters()).add_(1.0)
        return [EvalResult(evaluator=self.name, metric="mean", layers=scores)]


def test_check_evaluator() -> None:
    results = check_evaluator(MeanProbe)
    assert set(results[0].layers) == {"l1", "l2"}
    assert set(check_evaluator(MeanProbe, {"layers": ["l2"]})[0].layers) == {"l2"}
    for flaw, message in [("nan", "mean on l1 is nan"), ("missing", "scores layers \\['l1'\\], asked for"),
                          ("touch", "changed the frozen trunk")]:  # fmt: skip
        with pytest.raises(AssertionError, match=message):
            check_evaluator(MeanProbe, {"flaw": flaw})


def plugin_module(*components: type) -> types.ModuleType:
    module = types.ModuleType("kit_test_plugin")

    @hookimpl
    def sslreg_register(register: Any) -> None:
        for component in components:
            register(component)

    module.sslreg_register = sslreg_register  # type: ignore[attr-defined]
    return module


def test_check_plugin_runs_what_it_has_options_for() -> None:
    module = plugin_module(Count, MeanProbe)
    with pytest.warns(UserWarning, match="dataset 'count', evaluator 'mean_probe' not run; pass their fixture"):
        check_plugin(module)
    with pytest.raises(AssertionError, match="stream\\(part, 2\\) parts are not disjoint"):
        check_plugin(module, dataset_options={"count": {"count": 5, "flaw": "overlap"}}, evaluator_options={})
    with pytest.raises(AssertionError, match="dataset_options names \\['cuont'\\]"):
        check_plugin(module, dataset_options={"cuont": {}})
    entries = check_plugin(
        module, dataset_options={"count": [{"count": 3}, {"count": 4}]}, evaluator_options={"mean_probe": {}}
    )
    assert [entry.name for entry in entries] == ["count", "mean_probe"]


@pytest.mark.skipif(importlib.util.find_spec("sslreg_linear") is None, reason="sslreg-linear is not installed")
def test_linear_probe_passes_the_evaluator_check() -> None:
    from sslreg_linear import LinearProbe

    results = check_evaluator(LinearProbe, {"epochs": 2, "lr_steps": [1], "batch_size": 8})
    assert {result.metric for result in results} and all(set(r.layers) == {"l1", "l2"} for r in results)


@pytest.mark.skipif(importlib.util.find_spec("sslreg_svm") is None, reason="sslreg-svm is not installed")
def test_svm_evaluators_pass_the_evaluator_check() -> None:
    from sslreg_svm.low_shot import LowShot
    from sslreg_svm.voc07_svm import VOC07SVM

    check_evaluator(VOC07SVM, {"costs": [0.1, 1.0], "folds": 2})
    check_evaluator(LowShot, {"costs": [1.0], "shots": [1, 2], "samples": 2})
