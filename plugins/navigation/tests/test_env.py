"""The MiniWorld task behind gymnasium: seeded episodes reproduce, path bookkeeping, geodesics, shaping."""

from __future__ import annotations

import numpy as np
import pytest

from sslreg import UserError

ENV = "MiniWorld-OneRoomS6Fast-v0"  # a 6 m room, 0.7 m steps, 45° turns, 50 steps
TURN_LEFT, TURN_RIGHT, FORWARD = 0, 1, 2


@pytest.fixture
def make(gl):
    from sslreg_navigation.env import env_factory

    return lambda **options: env_factory(ENV, (30, 40), **options)()


def state(env) -> tuple:
    world = env.unwrapped
    return (tuple(world.agent.pos), float(world.agent.dir), tuple(world.box.pos))


def test_episodes_are_reproducible_under_a_seed(make) -> None:
    a, b = make(), make()
    frames_a, _ = a.reset(seed=7)
    frames_b, _ = b.reset(seed=123)
    assert state(a) != state(b)
    frames_b, _ = b.reset(seed=7)
    assert state(a) == state(b) and np.array_equal(frames_a, frames_b)
    for action in [FORWARD, TURN_LEFT, FORWARD, FORWARD, TURN_RIGHT, FORWARD]:
        step_a, step_b = a.step(action), b.step(action)
        assert np.array_equal(step_a[0], step_b[0]) and step_a[1:4] == step_b[1:4]
    assert state(a) == state(b)
    a.reset(seed=7)
    assert np.array_equal(a.reset(seed=7)[0], frames_a)  # same seed later in the env's life: the same episode


def test_frames_are_rgb_of_the_requested_size(make) -> None:
    frame, _ = make().reset(seed=0)
    assert frame.shape == (30, 40, 3) and frame.dtype == np.uint8 and frame.std() > 0


def test_shortest_path_in_one_room_is_the_straight_line_to_the_goal_region(make) -> None:
    from sslreg_navigation.env import goal_radius

    env = make(measure=True)
    for seed in range(5):
        env.reset(seed=seed)
        world = env.unwrapped
        straight = np.linalg.norm(world.agent.pos[[0, 2]] - world.box.pos[[0, 2]])
        assert env.shortest() == pytest.approx(max(0.0, straight - goal_radius(world)), abs=1e-9)
        assert goal_radius(world) == pytest.approx(world.box.radius + world.agent.radius + 1.1 * 0.7)


def test_turning_is_not_path_and_a_free_step_is_one_step_long(make) -> None:
    env = make(measure=True, max_episode_steps=4)
    env.reset(seed=3)
    for _ in range(3):
        env.step(TURN_LEFT)
    assert env.taken == 0.0
    before = env.unwrapped.agent.pos.copy()
    *_, terminated, truncated, info = env.step(FORWARD)
    moved = np.linalg.norm(env.unwrapped.agent.pos - before)
    assert moved in (0.0, pytest.approx(0.7))  # blocked by a wall, or one 0.7 m step
    assert env.taken == pytest.approx(moved)
    if not terminated:  # the 4-step limit ends the episode and reports it
        assert truncated and info["navigation"].steps == 4 and info["navigation"].taken == pytest.approx(moved)
        assert not info["navigation"].success and info["navigation"].shortest == pytest.approx(env.shortest())


def test_progress_reward_adds_up_to_the_geodesic_progress(make) -> None:
    env = make(progress_reward=2.0)
    env.reset(seed=1)
    start = env.field.at(env.unwrapped.agent.pos[[0, 2]])
    total, sparse = 0.0, 0.0
    for action in [FORWARD, TURN_LEFT, FORWARD, FORWARD, TURN_RIGHT, FORWARD]:
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated:
            sparse = 1.0 - 0.2 * env.unwrapped.step_count / env.unwrapped.max_episode_steps
            break
    end = env.field.at(env.unwrapped.agent.pos[[0, 2]])
    assert total - sparse == pytest.approx(2.0 * (start - end))


def test_unknown_or_goalless_envs_are_user_errors(gl) -> None:
    from sslreg_navigation.env import env_factory

    with pytest.raises(UserError, match="navigation.env: unknown environment 'MiniWorld-Nowhere-v0'"):
        env_factory("MiniWorld-Nowhere-v0", (30, 40))
    with pytest.raises(UserError, match="has no goal box"):
        env_factory("MiniWorld-PutNext-v0", (30, 40))()
