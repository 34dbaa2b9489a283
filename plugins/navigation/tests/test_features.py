"""Trunk features as observations: one no-grad pass per step for all envs (plus the frames that ended
episodes), through the trunk's input contract; the learned compressor on top. No renderer needed."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import pytest
import torch
from sslreg_navigation.features import CompressTrunkFeatures, FrameEncoder, TrunkFeatures
from stable_baselines3.common.vec_env import DummyVecEnv

from sslreg import BackboneConfig, InputContract
from sslreg.testing import TinyBackbone


class CountingTrunk(TinyBackbone):
    def __init__(self) -> None:
        super().__init__(BackboneConfig(name="tiny"))
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        self.batches.append(len(x))
        assert not torch.is_grad_enabled()
        return super().forward(x, layers)


class Frames(gym.Env):
    """Random 24x32 RGB frames; every episode lasts ``length`` steps."""

    def __init__(self, length: int) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (24, 32, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.length = length

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, (24, 32, 3), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        return self._frame(), 0.0, self.t >= self.length, False, {}


@pytest.fixture
def trunk() -> CountingTrunk:
    torch.manual_seed(0)
    return CountingTrunk().freeze()


def test_one_trunk_pass_per_step_covers_every_env_and_each_ended_episode(trunk: CountingTrunk) -> None:
    encoder = FrameEncoder(trunk, "l2", torch.device("cpu"), (24, 32))
    venv = TrunkFeatures(DummyVecEnv([lambda: Frames(3), lambda: Frames(5), lambda: Frames(4)]), encoder)
    venv.seed(0)
    trunk.batches.clear()
    obs = venv.reset()
    assert obs.shape == (3, 16, 6, 8) and obs.dtype == np.float32
    ended = 0
    for _ in range(6):
        obs, _, dones, infos = venv.step(np.zeros(3, dtype=int))
        for done, info in zip(dones, infos):
            if done:
                ended += 1
                assert info["terminal_observation"].shape == (16, 6, 8)  # a feature map, not a frame
    assert ended == 4  # at steps 3, 4, 5 and 6
    assert trunk.batches == [3, 3, 3, 4, 4, 4, 4]  # one pass per reset/step: 3 envs + the episodes that ended
    assert encoder.frames == sum(trunk.batches) and encoder.passes == 7


def test_features_are_the_trunk_map_of_the_contracted_frame(trunk: CountingTrunk) -> None:
    trunk.input_contract = InputContract(normalize="per_image")
    frames = np.random.default_rng(0).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    features = FrameEncoder(trunk, "l1", torch.device("cpu"), (24, 32))(frames)
    with torch.no_grad():
        expected = trunk(torch.from_numpy(np.stack([trunk.input_contract(f) for f in frames])), ["l1"])["l1"]
    assert torch.equal(torch.from_numpy(features), expected)
    assert not any(p.requires_grad for p in trunk.parameters())


def test_compressor_is_small_learned_and_blind_to_the_trunks_scale() -> None:
    space = gym.spaces.Box(-np.inf, np.inf, (16, 6, 8), np.float32)
    torch.manual_seed(0)
    compress = CompressTrunkFeatures(space, channels=4, features_dim=32)
    maps = torch.randn(5, 16, 6, 8)
    out = compress(maps)
    assert out.shape == (5, 32)
    assert torch.allclose(compress(maps * 1000.0), out, atol=1e-4)
    assert all(p.requires_grad for p in compress.parameters())
