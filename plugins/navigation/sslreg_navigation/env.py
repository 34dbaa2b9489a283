"""The navigation task: a MiniWorld object-goal environment (reach the red box, RGB frames) behind gymnasium, with
the episode statistics SPL needs and an optional reward for geodesic progress toward the goal.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from sslreg import UserError
from sslreg_navigation.geodesic import DistanceField, FloorPlan
from sslreg_navigation.gl import miniworld
from sslreg_navigation.metrics import Episode


def floor_plan(world: Any) -> FloorPlan:
    """The free-space description of a MiniWorld world after reset: its walls, its entities other than the
    agent and the goal as round obstacles, the agent's radius."""
    walls = np.asarray(world.wall_segs, dtype=np.float64)[:, :, [0, 2]]
    obstacles = [
        (entity.pos[0], entity.pos[2], entity.radius)
        for entity in world.entities
        if entity is not world.agent and entity is not world.box and getattr(entity, "radius", None)
    ]
    return FloorPlan(
        walls=walls,
        radius=float(world.agent.radius),
        bounds=(world.min_x, world.max_x, world.min_z, world.max_z),
        obstacles=np.asarray(obstacles, dtype=np.float64).reshape(-1, 3),
    )


def goal_radius(world: Any) -> float:
    """How close the agent's centre must come to the box's centre: MiniWorld's ``near`` (touching plus 1.1 steps)."""
    return float(world.box.radius + world.agent.radius + 1.1 * world.max_forward_step)


class NavigationTask(gym.Wrapper):
    """Tracks one episode of a MiniWorld box-reaching env: the path taken, success, the shortest path (geodesic
    from the start to the goal region), and adds ``progress_reward`` per metre of geodesic progress.

    At the end of an episode ``info["navigation"]`` holds the :class:`Episode`. The geodesic is computed only
    when it is needed (``measure`` or a progress reward).
    """

    def __init__(self, env: gym.Env, progress_reward: float = 0.0, measure: bool = False) -> None:
        super().__init__(env)
        self.progress_reward, self.measure = progress_reward, measure
        self.field: DistanceField | None = None

    @property
    def world(self) -> Any:
        return self.env.unwrapped

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        world = self.world
        self.taken, self.steps, self.start = 0.0, 0, world.agent.pos[[0, 2]].copy()
        self.field = None
        if self.measure or self.progress_reward:
            self.field = DistanceField(floor_plan(world), world.box.pos[[0, 2]])
            self.distance = self.field.at(self.start)
        return obs, info

    def shortest(self) -> float:
        """Geodesic length from this episode's start to the goal region (0 if it starts inside)."""
        if self.field is None:
            self.field = DistanceField(floor_plan(self.world), self.world.box.pos[[0, 2]])
        return max(0.0, self.field.shortest(self.start) - goal_radius(self.world))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        world = self.world
        before = world.agent.pos[[0, 2]].copy()
        obs, reward, terminated, truncated, info = self.env.step(action)
        here = world.agent.pos[[0, 2]]
        self.taken += float(np.linalg.norm(here - before))
        self.steps += 1
        if self.progress_reward:
            distance = self.field.at(here)
            reward = float(reward) + self.progress_reward * (self.distance - distance)
            self.distance = distance
        if terminated or truncated:
            success = bool(terminated and world.near(world.box))
            shortest = self.shortest() if self.measure else float("nan")
            info["navigation"] = Episode(success, shortest, self.taken, self.steps)
        return obs, reward, terminated, truncated, info


def check_env(env_id: str) -> None:
    """A clear error for an env id that is not a MiniWorld box-reaching task."""
    miniworld()
    ids = sorted(name for name in gym.envs.registry if name.startswith("MiniWorld-"))
    if env_id not in gym.envs.registry:
        raise UserError(f"navigation.env: unknown environment {env_id!r}; MiniWorld's are {', '.join(ids)}")


def env_factory(
    env_id: str,
    frame_size: tuple[int, int],
    *,
    progress_reward: float = 0.0,
    measure: bool = False,
    max_episode_steps: int | None = None,
) -> Callable[[], NavigationTask]:
    """A factory of the task env: RGB frames of ``frame_size`` (height, width); seeded through ``reset``."""
    check_env(env_id)

    def make() -> NavigationTask:
        height, width = frame_size
        with contextlib.redirect_stdout(io.StringIO()):  # MiniWorld prints its frame-buffer fallbacks
            env = gym.make(
                env_id, disable_env_checker=True, obs_width=width, obs_height=height, window_width=64, window_height=64
            )
        if not hasattr(env.unwrapped, "box"):
            env.close()
            raise UserError(f"navigation.env: {env_id!r} has no goal box to reach; use a box-reaching MiniWorld env")
        if max_episode_steps is not None:
            env.unwrapped.max_episode_steps = max_episode_steps  # MiniWorld truncates (and scales its reward) by it
        return NavigationTask(env, progress_reward=progress_reward, measure=measure)

    return make


@contextlib.contextmanager
def open_envs(make: Callable[[], NavigationTask], count: int) -> Iterator[list[NavigationTask]]:
    """``count`` envs from ``make``, closed (with their GL contexts) on the way out."""
    envs: list[NavigationTask] = []
    try:
        envs.extend(make() for _ in range(count))
        yield envs
    finally:
        for env in envs:
            env.close()
