"""The plugin passes sslreg's conformance kit and registers both evaluators."""

from __future__ import annotations

import sslreg_svm

from sslreg.testing import check_plugin


def test_conformance() -> None:
    entries = check_plugin(sslreg_svm)
    assert {(entry.kind, entry.name) for entry in entries} == {("evaluator", "voc07_svm"), ("evaluator", "low_shot")}
