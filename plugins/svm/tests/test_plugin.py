"""The plugin passes sslreg's conformance kit and registers both evaluators."""

from __future__ import annotations

import sslreg_svm

from sslreg.testing import check_plugin


def test_conformance() -> None:
    entries = check_plugin(
        sslreg_svm,
        evaluator_options={
            "voc07_svm": {"costs": [0.1, 1.0], "folds": 2},
            "low_shot": {"costs": [1.0], "shots": [1, 2], "samples": 2},
        },
    )
    assert {(entry.kind, entry.name) for entry in entries} == {("evaluator", "voc07_svm"), ("evaluator", "low_shot")}
