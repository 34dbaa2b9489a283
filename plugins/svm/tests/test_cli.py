"""`sslreg evaluate voc07_svm --features FILE.npz`: JSON and table output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sslreg.cli import main


def _own(err: str) -> str:
    """stderr without the warnings of other installed plugins that fail to load (not this plugin's output)."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith("sslreg: warning: plugin "))


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
        ({"train_features": np.zeros(60)}, "train_features must be a real (N, D) matrix"),
        ({"train_features": np.zeros((0, 10)), "train_labels": np.zeros((0, 3))}, "train_features is empty"),
        ({"train_features": np.zeros((60, 0)), "test_features": np.zeros((30, 0))}, "train_features is empty"),
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
    err = _own(captured.err)
    assert captured.out == "" and message in err and err.count("\n") == 1


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


def _strict_json(text: str) -> dict:
    """json.loads that refuses NaN and Infinity (not JSON)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "split, value, counts, position",
    [("train", np.nan, "1 non-finite values (1 NaN, 0 inf)", "row 3, column 2"),
     ("test", np.inf, "2 non-finite values (0 NaN, 2 inf)", "row 0, column 5")],
)  # fmt: skip
def test_non_finite_features_are_refused_with_counts_and_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], split: str, value: float, counts: str, position: str
) -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60 if split == "train" else 30, 10))
    if split == "train":
        features[3, 2] = value
    else:
        features[0, 5] = features[7, 1] = value
    path = _features(tmp_path / "f.npz", **{f"{split}_features": features})
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    err = _own(captured.err)
    assert captured.out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert f"f.npz: {split}_features has {counts}, the first at {position}" in err


def test_degenerate_classes_are_reported_and_left_out_of_the_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(2)
    train_labels = np.where(rng.random((60, 4)) < 0.4, 1, -1).astype(np.int8)
    test_labels = np.where(rng.random((30, 4)) < 0.4, 1, -1).astype(np.int8)
    train_labels[:, 1] = -1  # no positive to train on
    train_labels[:, 2] = 1  # no negative to train on
    test_labels[:, 3] = np.where(test_labels[:, 3] == 1, 0, -1)  # positives only 'difficult': nothing to rank
    features = np.concatenate([train_labels, test_labels]) @ np.eye(4, 10) + rng.normal(size=(90, 10)) * 0.3
    path = _features(
        tmp_path / "f.npz", train_features=features[:60], train_labels=train_labels, test_features=features[60:],
        test_labels=test_labels, class_names=np.array(["cat", "dog", "car", "cow"]),
    )  # fmt: skip
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--json", "--costs", "0.1", "1"]) == 0
    captured = capsys.readouterr()
    err = _own(captured.err)
    out = _strict_json(captured.out)
    assert out["per_class_ap"]["dog"] is None and out["per_class_ap"]["car"] is None
    assert out["per_class_ap"]["cow"] is None and out["chosen_costs"]["cow"] in (0.1, 1.0)  # trained, not scored
    assert out["chosen_costs"]["dog"] is None and out["mAP"] == pytest.approx(out["per_class_ap"]["cat"])
    assert out["excluded_classes"] == {
        "dog": "no positive in train", "car": "no negative in train", "cow": "no positive in test"
    }  # fmt: skip
    assert err.count("\n") == 1
    assert "warning: " in err and "3 classes left out of the mAP: dog (no positive in train)" in err
    assert main(["evaluate", "voc07_svm", "--features", str(path), "--costs", "0.1", "1"]) == 0
    assert "-" in capsys.readouterr().out  # the table marks what has no AP


def test_no_class_left_to_score_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = -np.ones((60, 3), dtype=np.int8)
    path = _features(tmp_path / "f.npz", train_labels=labels)
    assert main(["evaluate", "voc07_svm", "--features", str(path)]) == 2
    captured = capsys.readouterr()
    err = _own(captured.err)
    assert "no class can be scored" in err and err.count("\n") == 1
