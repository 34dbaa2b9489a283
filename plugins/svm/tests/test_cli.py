"""`sslreg evaluate voc07_svm --features FILE.npz`: JSON and table output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sslreg.cli import main


def _features(path: Path, **override: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    labels = np.where(rng.random((90, 3)) < 0.4, 1, -1).astype(np.int8)
    labels[rng.random((90, 3)) < 0.05] = 0
    features = (labels == 1) @ np.eye(3, 10) * 2 + rng.normal(size=(90, 10)) * 0.4
    arrays = dict(
        train_features=features[:60], train_labels=labels[:60], test_features=features[60:], test_labels=labels[60:]
    )
    arrays.update(override)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _features(tmp_path / "f.npz", class_names=np.array(["cat", "dog", "car"]))
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--json", "--costs", "0.01", "0.1", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["per_class_ap"]) == ["cat", "dog", "car"]
    assert 90.0 < out["mAP"] <= 100.0
    assert out["mAP"] == pytest.approx(np.mean(list(out["per_class_ap"].values())))
    assert set(out["chosen_costs"].values()) <= {0.01, 0.1, 1.0}


def test_table_output_matches_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _features(tmp_path / "f.npz")
    costs = ["--costs", "0.1", "1", "--solver", "sklearn"]
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--json", *costs]) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "voc07_svm", "--features", str(path), *costs]) == 0
    table = capsys.readouterr().out
    assert "class0" in table and "class2" in table and "mAP" in table
    assert f"{result['mAP']:.2f}" in table


@pytest.mark.parametrize(
    "override, message",
    [
        ({"test_labels": None}, "missing key(s) ['test_labels']"),
        ({"train_features": np.zeros(60)}, "train_features must be a numeric (N, D) matrix"),
        ({"train_labels": np.full((60, 3), 2)}, "train_labels: labels must be 1"),
        ({"test_labels": np.ones((5, 3))}, "test_labels has 5 rows"),
        ({"test_features": np.zeros((30, 4))}, "differ in dimension"),
        ({"test_labels": np.ones((30, 2))}, "differ in number of classes"),
        ({"class_names": np.array(["a"])}, "class_names has 1 entries for 3 classes"),
    ],
)
def test_bad_files_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: dict, message: str
) -> None:
    path = _features(tmp_path / "f.npz", **override)
    assert main(["evaluate", "voc07_svm", "--features", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1


def test_missing_or_unreadable_file_and_bad_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "voc07_svm", "--features", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz not found" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert main(["evaluate", "voc07_svm", "--features", str(tmp_path / "junk.npz")]) == 2
    assert "not a readable .npz" in capsys.readouterr().err
    path = _features(tmp_path / "f.npz")
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--costs", "0", "1"]) == 2
    assert "--costs must all be positive" in capsys.readouterr().err
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--folds", "1"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--device", "gpu0"]) == 2
    assert "'gpu0' is not a torch device" in capsys.readouterr().err
