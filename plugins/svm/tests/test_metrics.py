"""VOC07 AP against hand-computed cases (ties, 'difficult' = 0 ignored) and mAP."""

from __future__ import annotations

import numpy as np
import pytest
from sslreg_svm.metrics import mean_ap, voc07_ap


def test_perfect_ranking_is_one() -> None:
    assert voc07_ap(np.array([0.9, 0.8, 0.1, -1.0]), np.array([1, 1, -1, -1])) == pytest.approx(1.0)


def test_hand_computed_interpolated_ap() -> None:
    # ranking: +, -, +, -  -> precision 1, 1/2, 2/3, 1/2 ; recall 1/2, 1/2, 1, 1
    # monotone precision at the recall steps: 1 (recall 0 -> 0.5) and 2/3 (0.5 -> 1)  -> AP = 0.5 + 1/3
    ap = voc07_ap(np.array([4.0, 3.0, 2.0, 1.0]), np.array([1, -1, 1, -1]))
    assert ap == pytest.approx(0.5 * 1.0 + 0.5 * 2.0 / 3.0)


def test_interpolation_lifts_precision() -> None:
    # ranking: -, +, -, +, +  -> precision 0, 1/2, 1/3, 2/4, 3/5; the monotone envelope is 3/5 everywhere
    ap = voc07_ap(np.array([5.0, 4.0, 3.0, 2.0, 1.0]), np.array([-1, 1, -1, 1, 1]))
    assert ap == pytest.approx(3.0 / 5.0)


def test_difficult_zero_labels_are_ignored() -> None:
    scores = np.array([9.0, 4.0, 3.0, 2.0, 1.0])
    with_difficult = voc07_ap(scores, np.array([0, 1, -1, 1, -1]))
    without = voc07_ap(scores[1:], np.array([1, -1, 1, -1]))
    assert with_difficult == pytest.approx(without) == pytest.approx(0.5 + 1.0 / 3.0)


def test_ties_rank_later_index_first() -> None:
    # equal scores: the reference's reversed argsort puts the later sample first
    assert voc07_ap(np.array([1.0, 1.0]), np.array([1, -1])) == pytest.approx(0.5)
    assert voc07_ap(np.array([1.0, 1.0]), np.array([-1, 1])) == pytest.approx(1.0)


def test_no_positive_is_nan() -> None:
    assert np.isnan(voc07_ap(np.array([1.0, 2.0]), np.array([-1, 0])))


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="voc07_ap"):
        voc07_ap(np.zeros(3), np.ones(4))


def test_mean_ap_averages_classes() -> None:
    scores = np.array([[4.0, 1.0], [3.0, 2.0], [2.0, 3.0], [1.0, 4.0]])
    labels = np.array([[1, 1], [-1, -1], [1, 0], [-1, -1]])
    m, per_class = mean_ap(scores, labels)
    # class 1 ranking (label 0 dropped): -, -, + -> precision 1/3 -> AP 1/3
    assert per_class == pytest.approx([0.5 + 1.0 / 3.0, 1.0 / 3.0])
    assert m == pytest.approx(per_class.mean())
