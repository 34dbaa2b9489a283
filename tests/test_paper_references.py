"""Every configs/paper preset carries the paper's published numbers (a `reference:` block), except the documented
presets whose results the paper gives only as plots; each block names evaluators, metrics and result columns
that the preset's evaluators really report, so its numbers land beside ours in the table."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from sslreg_detection.layout import choose_layout
from sslreg_normals.evaluator import METRICS as NORMALS_METRICS

from sslreg import build_trunk, get_registry
from sslreg.config import load_raw
from sslreg.reference import Reference
from sslreg.testing import check_evaluator

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"
PRESETS = sorted(PAPER.glob("*.yaml"))
#: Presets whose numbers are not in docs/protocol.md#reference-numbers (plots only, or Places205 not quoted).
NO_PUBLISHED_NUMBERS = {
    "colorization_complexity.yaml",
    "jigsaw_complexity.yaml",
    "navigation.yaml",
    *(f"places205_{name}.yaml" for name in ("linear", "linear_alexnet", "linear_colorization", "low_shot")),
}


@functools.cache
def _svm_metrics() -> frozenset[str]:
    svm = get_registry().get("evaluator", "voc07_svm").cls
    return frozenset(result.metric for result in check_evaluator(svm, {"layers": ["l1"]}))


def _metrics(evaluator: str) -> set[str]:
    """The metric names ``evaluator`` reports (from a tiny run, or the plugin's declared list)."""
    if evaluator == "voc07_svm":
        return _svm_metrics()
    if evaluator == "nyuv2_normals":
        return {metric for _, metric, _ in NORMALS_METRICS}
    if evaluator == "voc07_detection":
        return {"mAP"}  # plugins/detection/tests/test_evaluator.py asserts it
    raise AssertionError(f"no metric list for {evaluator}: add it here")


def _columns(item: dict, backbone: dict) -> set[str]:
    """The result columns (layer keys) ``item``'s evaluator reports on the preset's trunk."""
    return set(_columns_of(json.dumps(item, sort_keys=True), json.dumps(backbone, sort_keys=True)))


@functools.cache
def _columns_of(item_json: str, backbone_json: str) -> tuple[str, ...]:
    registry = get_registry()
    config = registry.config("evaluator", json.loads(item_json))
    trunk = _trunk(backbone_json)
    if config.name == "voc07_detection":
        return (choose_layout(trunk, config.layers, config.freeze_at).tap,)
    taps = trunk.resolve_layers(config.layers)
    if config.name == "nyuv2_normals" and not config.separate_layers:
        return ("+".join(taps),)
    return tuple(taps)


@functools.cache
def _trunk(backbone_json: str):
    return build_trunk(get_registry(), json.loads(backbone_json), seed=0)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_paper_preset_has_the_papers_numbers_or_says_why_not(preset: Path) -> None:
    raw = load_raw(preset)
    if preset.name in NO_PUBLISHED_NUMBERS:
        assert not raw.get("reference")
        assert "No `reference:` block: the paper" in preset.read_text(), "say why in a comment"
    else:
        assert raw.get("reference"), f"{preset.name}: add the paper's numbers as a reference: block"


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.name not in NO_PUBLISHED_NUMBERS], ids=lambda p: p.name)
def test_reference_blocks_name_what_the_evaluators_report(preset: Path) -> None:
    raw = load_raw(preset)
    evaluators = {item["name"]: item for item in raw["evaluate"]}
    backbone = raw.get("backbone") or raw["pretrain"]["backbone"]
    backbones = [backbone]
    for key, values in (raw.get("sweep") or {}).items():
        if key == "pretrain.backbone.name":
            backbones = [{**backbone, "name": name} for name in values]
    for block in raw["reference"]:
        reference = Reference.model_validate(block)
        when_trunk = reference.when.get("pretrain.backbone.name") or reference.when.get("backbone.name")
        trunks = [b for b in backbones if when_trunk in (None, b["name"])]
        assert trunks, f"{reference.label}: its 'when' matches no trunk of the preset"
        for evaluator, metrics in reference.scores.items():
            assert evaluator in evaluators, f"{reference.label}: no evaluator {evaluator}"
            assert set(metrics) <= _metrics(evaluator), f"{reference.label}: {set(metrics)}"
            columns = set.union(*(_columns(evaluators[evaluator], {**b, "weights": None}) for b in trunks))
            for metric, layers in metrics.items():
                assert set(layers) <= columns, f"{reference.label} / {metric}: {sorted(layers)} not in {columns}"


def test_the_normals_rows_are_the_papers_six_in_order() -> None:
    raw = load_raw(PAPER / "normals_benchmark.yaml")
    rows = [block["scores"]["nyuv2_normals"] for block in raw["reference"]]
    means = [row["normals mean°"]["res2+res3+res4+res5"] for row in rows]
    assert means == [26.4, 23.3, 26.3, 24.2, 22.6, 22.4]
    labels = [block["label"] for block in raw["reference"]]
    assert labels[0].endswith("(supervised baseline)") and labels[-1].endswith("(Jigsaw YFCC-100M)")
