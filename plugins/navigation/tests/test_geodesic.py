"""Geodesic shortest paths on hand-drawn floor plans against lengths computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sslreg_navigation.geodesic import DistanceField, FloorPlan, path_length, segment_segment_distance


def room(width: float, depth: float, *inner: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    corners = [(0, 0), (width, 0), (width, depth), (0, depth)]
    outline = [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    return np.array(outline + list(inner), dtype=float)


def around_a_corner(start, goal, corner, radius: float) -> float:
    """Taut path from start to goal wrapping a disc of ``radius`` at ``corner``: two tangents and the arc."""
    a, b = np.subtract(start, corner), np.subtract(goal, corner)
    da, db = np.linalg.norm(a), np.linalg.norm(b)
    between = math.acos(np.dot(a, b) / (da * db))
    wrap = 2 * math.pi - between  # the path goes round the far side of the corner
    arc = wrap - math.acos(radius / da) - math.acos(radius / db)
    return math.sqrt(da**2 - radius**2) + math.sqrt(db**2 - radius**2) + radius * arc


def test_open_room_is_the_straight_line() -> None:
    plan = FloorPlan(room(6, 4), radius=0.4, bounds=(0, 6, 0, 4))
    field = DistanceField(plan, np.array([5.0, 3.0]))
    path = field.path(np.array([1.0, 0.5]))
    assert len(path) == 2  # pulled taut onto start -> goal
    assert field.shortest(np.array([1.0, 0.5])) == pytest.approx(math.hypot(4.0, 2.5))


def test_through_a_doorway_wraps_the_wall_end() -> None:
    # A 10 x 4 room split by a wall x = 5 from z = 0 to 2: from (2, 1) to (8, 1) the agent (radius 0.4) must go
    # over the wall's end at (5, 2). By hand: 2 * sqrt(10 - 0.16) + 0.4 * (216.87° - 2 * acos(0.4 / sqrt(10))).
    plan = FloorPlan(room(10, 4, ((5, 0), (5, 2))), radius=0.4, bounds=(0, 10, 0, 4))
    field = DistanceField(plan, np.array([8.0, 1.0]))
    by_hand = around_a_corner((2, 1), (8, 1), (5, 2), 0.4)
    assert by_hand == pytest.approx(6.6326, abs=1e-4)
    assert by_hand <= field.shortest(np.array([2.0, 1.0])) <= 1.01 * by_hand
    # The grid's own field is an 8-connected estimate: longer, but by less than 8%.
    assert by_hand < field.at(np.array([2.0, 1.0])) < 1.09 * by_hand


def test_round_obstacle_detour() -> None:
    # A pillar of radius 1 at (5, 3) between (0.5, 3) and (9.5, 3); agent radius 0.5: wrap a disc of radius 1.5.
    plan = FloorPlan(room(10, 6), radius=0.5, bounds=(0, 10, 0, 6), obstacles=np.array([[5.0, 3.0, 1.0]]))
    field = DistanceField(plan, np.array([9.5, 3.0]))
    a, b = math.sqrt(4.5**2 - 1.5**2), math.acos(1.5 / 4.5)
    by_hand = 2 * a + 1.5 * (math.pi - 2 * b)
    assert by_hand <= field.shortest(np.array([0.5, 3.0])) <= 1.01 * by_hand


def test_field_decreases_toward_the_goal_and_is_zero_there() -> None:
    plan = FloorPlan(room(6, 6), radius=0.4, bounds=(0, 6, 0, 6))
    field = DistanceField(plan, np.array([3.0, 3.0]))
    assert field.at(np.array([3.0, 3.0])) == pytest.approx(0.0, abs=0.15)
    assert field.at(np.array([1.0, 3.0])) < field.at(np.array([0.6, 3.0]))


def test_unreachable_goal_is_an_error() -> None:
    plan = FloorPlan(room(10, 4, ((5, 0), (5, 4))), radius=0.4, bounds=(0, 10, 0, 4))  # a wall across the room
    with pytest.raises(ValueError, match="cannot be reached"):
        DistanceField(plan, np.array([8.0, 1.0])).path(np.array([2.0, 1.0]))


def test_segment_distance() -> None:
    crossing = segment_segment_distance(np.array([0, 0.0]), np.array([2, 2.0]), np.array([0, 2.0]), np.array([2, 0.0]))
    apart = segment_segment_distance(np.array([0, 0.0]), np.array([1, 0.0]), np.array([0, 3.0]), np.array([1, 3.0]))
    assert crossing == 0.0 and apart == pytest.approx(3.0)
    assert path_length(np.array([[0, 0], [3, 4], [3, 5]])) == pytest.approx(6.0)
