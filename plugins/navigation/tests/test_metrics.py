"""Success rate and SPL on hand-computed episodes (Anderson et al. 2018: S_i * l_i / max(p_i, l_i))."""

from __future__ import annotations

import pytest
from sslreg_navigation.metrics import Episode, spl, success_rate


def test_spl_of_hand_computed_paths() -> None:
    episodes = [
        Episode(success=True, shortest=3.0, taken=3.0, steps=20),  # optimal: 1
        Episode(success=True, shortest=3.0, taken=4.0, steps=30),  # detour: 3/4
        Episode(success=True, shortest=5.0, taken=4.0, steps=30),  # shorter than l (discrete steps): capped at 1
        Episode(success=False, shortest=2.0, taken=2.0, steps=40),  # failure scores 0 however short
    ]
    assert spl(episodes) == pytest.approx((1.0 + 0.75 + 1.0 + 0.0) / 4)
    assert success_rate(episodes) == 0.75


def test_spl_of_a_long_wander() -> None:
    # 3 m away, found after walking 2 m the wrong way, 2 m back and then the 3 m: l/p = 3/7.
    assert spl([Episode(True, 3.0, 2.0 + 2.0 + 3.0, 50)]) == pytest.approx(3 / 7)


def test_spl_counts_a_start_in_the_goal_region_that_succeeds_in_place() -> None:
    assert spl([Episode(True, 0.0, 0.0, 1)]) == 1.0
    assert spl([Episode(True, 0.0, 0.3, 2)]) == 0.0  # l = 0 but it walked: 0 / 0.3


def test_spl_is_at_most_the_success_rate() -> None:
    episodes = [Episode(i % 3 != 0, 1.0 + i, 1.5 + 2 * i, 10) for i in range(9)]
    assert 0.0 < spl(episodes) <= success_rate(episodes)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no episodes"):
        spl([])
    with pytest.raises(ValueError, match="≥ 0"):
        spl([Episode(True, -1.0, 1.0, 3)])
