"""Shortest paths on a floor plan: the geodesic distance an SPL denominator needs, and a distance field for shaping.

Free space for the agent's centre is every point at least the agent's radius away from each wall segment and
clear of each round obstacle. Dijkstra over the 8-connected grid of free cells (one run from the goal) gives a
distance field and a route from any cell; pulling that route taut with exact line-of-sight tests (segment to
segment distances, no sampling) makes its length the geodesic: exact where the goal is in sight (an open room),
otherwise within about one cell per corner it turns around. Pure numpy/scipy: no renderer needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

#: Grid cell (metres) of the free-space grid: MiniWorld's agent is 0.4 m in radius and steps 0.15 m.
CELL = 0.1


def point_segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points (..., 2) to segments a-b (..., 2), broadcast against each other."""
    ab = b - a
    length2 = np.sum(ab * ab, axis=-1)
    t = np.sum((points - a) * ab, axis=-1) / np.where(length2 > 0, length2, 1.0)
    closest = a + np.clip(t, 0.0, 1.0)[..., None] * ab
    return np.linalg.norm(points - closest, axis=-1)


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def segment_segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Distance between segments p0-p1 and q0-q1 (..., 2), broadcast: 0 where they cross, else the least
    endpoint-to-segment distance (which is exact for two segments that do not cross)."""
    d1, d2 = _cross(q0, q1, p0), _cross(q0, q1, p1)
    d3, d4 = _cross(p0, p1, q0), _cross(p0, p1, q1)
    crossing = (d1 * d2 < 0) & (d3 * d4 < 0)
    ends = np.minimum(
        np.minimum(point_segment_distance(p0, q0, q1), point_segment_distance(p1, q0, q1)),
        np.minimum(point_segment_distance(q0, p0, p1), point_segment_distance(q1, p0, p1)),
    )
    return np.where(crossing, 0.0, ends)


@dataclass(frozen=True)
class FloorPlan:
    """Walls (N, 2, 2) as x-z segments, round obstacles (M, 3) as x, z, radius, the agent's radius, the extent."""

    walls: np.ndarray
    radius: float
    bounds: tuple[float, float, float, float]  # min_x, max_x, min_z, max_z
    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """How far each point (K, 2) is from touching a wall or obstacle with the agent's disc (< 0: blocked)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        gap = np.full(len(points), np.inf)
        if len(self.walls):
            wall = point_segment_distance(points[:, None, :], self.walls[None, :, 0], self.walls[None, :, 1])
            gap = np.minimum(gap, wall.min(axis=1) - self.radius)
        if len(self.obstacles):
            centre = np.linalg.norm(points[:, None, :] - self.obstacles[None, :, :2], axis=-1)
            gap = np.minimum(gap, (centre - self.obstacles[None, :, 2]).min(axis=1) - self.radius)
        return gap

    def visible(self, origin: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Whether the agent's disc can slide straight from ``origin`` (2,) to each of ``targets`` (K, 2)."""
        origin = np.asarray(origin, dtype=np.float64)[None, None, :]
        targets = np.asarray(targets, dtype=np.float64).reshape(-1, 2)[:, None, :]
        ok = np.ones(targets.shape[0], dtype=bool)
        if len(self.walls):
            gap = segment_segment_distance(origin, targets, self.walls[None, :, 0], self.walls[None, :, 1])
            ok &= gap.min(axis=1) >= self.radius
        if len(self.obstacles):
            gap = point_segment_distance(self.obstacles[None, :, :2], origin, targets) - self.obstacles[None, :, 2]
            ok &= gap.min(axis=1) >= self.radius
        return ok


class DistanceField:
    """Geodesic distances to one goal point over a floor plan's free-space grid, and taut shortest paths."""

    def __init__(self, plan: FloorPlan, goal: np.ndarray, cell: float = CELL) -> None:
        self.plan, self.cell = plan, cell
        self.goal = np.asarray(goal, dtype=np.float64)[:2]
        min_x, max_x, min_z, max_z = plan.bounds
        self.origin = np.array([min_x, min_z])
        self.shape = (max(1, int(np.ceil((max_x - min_x) / cell))), max(1, int(np.ceil((max_z - min_z) / cell))))
        ix, iz = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        self.centres = self.origin + (np.stack([ix, iz], axis=-1) + 0.5) * cell  # (X, Z, 2)
        self.free = (plan.clearance(self.centres.reshape(-1, 2)) >= 0).reshape(self.shape)
        if not self.free.any():
            raise ValueError("the floor plan has no free space for the agent")
        # For every cell, the nearest free cell (a position is looked up through it).
        _, nearest = ndimage.distance_transform_edt(~self.free, return_indices=True)
        self._nearest_free = np.ravel_multi_index(tuple(nearest), self.shape)
        graph = self._graph()
        goal_cell = self._cell_of(self.goal)
        distances, self._predecessors = csgraph.dijkstra(graph, indices=goal_cell, return_predecessors=True)
        self.distances = distances.reshape(self.shape)

    def _graph(self) -> sparse.csr_matrix:
        """8-connected grid graph of the free cells (edge weights: the distance between cell centres)."""
        index = np.arange(self.free.size).reshape(self.shape)
        rows, cols, weights = [], [], []
        nx, nz = self.shape
        for dx, dz in ((1, 0), (0, 1), (1, 1), (1, -1)):  # each undirected neighbour pair once
            low, high = max(0, -dz), nz - max(0, dz)
            a = index[: nx - dx, low:high]
            b = index[dx:, low + dz : high + dz]
            both = self.free.flat[a] & self.free.flat[b]
            rows.append(a[both])
            cols.append(b[both])
            weights.append(np.full(int(both.sum()), self.cell * float(np.hypot(dx, dz))))
        n = self.free.size
        graph = sparse.coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), (n, n))
        return (graph + graph.T).tocsr()

    def _cell_of(self, point: np.ndarray) -> int:
        """The free cell that stands for a position (its own cell, or the nearest free one)."""
        i = np.clip(((np.asarray(point)[:2] - self.origin) / self.cell).astype(int), 0, np.array(self.shape) - 1)
        return int(self._nearest_free[i[0], i[1]])

    def at(self, point: np.ndarray) -> float:
        """Grid-geodesic distance from a position to the goal (8-connected: up to ~8% long; for reward shaping)."""
        return float(self.distances.flat[self._cell_of(point)])

    def path(self, start: np.ndarray) -> np.ndarray:
        """The taut shortest path from ``start`` to the goal as waypoints (K, 2), start and goal included."""
        start = np.asarray(start, dtype=np.float64)[:2]
        node = self._cell_of(start)
        if not np.isfinite(self.distances.flat[node]):
            raise ValueError(f"the goal {self.goal.tolist()} cannot be reached from {start.tolist()}")
        route = [node]
        while self._predecessors[route[-1]] >= 0:
            route.append(int(self._predecessors[route[-1]]))
        points = np.concatenate([start[None], self.centres.reshape(-1, 2)[route], self.goal[None]])
        return pull_taut(self.plan, points)

    def shortest(self, start: np.ndarray) -> float:
        """Geodesic length from ``start`` to the goal point."""
        return path_length(self.path(start))


def pull_taut(plan: FloorPlan, points: np.ndarray) -> np.ndarray:
    """Shortcut a route: from each kept point jump to the last point of an unbroken run of visible ones."""
    kept, anchor, last = [points[0]], 0, len(points) - 1
    while anchor < last:
        blocked = np.flatnonzero(~plan.visible(points[anchor], points[anchor + 1 :]))
        anchor = last if not len(blocked) else anchor + max(1, int(blocked[0]))
        kept.append(points[anchor])
    return np.asarray(kept)


def path_length(points: np.ndarray) -> float:
    """Length of a polyline (K, 2)."""
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
