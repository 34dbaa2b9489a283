"""Frozen trunk features as the agent's observation: one no-grad trunk pass per batch of frames from the
vectorised envs, then a small learned conv (inside the PPO policy) that compresses the tapped map.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from torch import nn

from sslreg import Backbone


class FrameEncoder:
    """RGB uint8 frames (N, H, W, 3) -> the frozen trunk's ``layer`` map (N, C, h, w) float32, in one pass.

    Frames enter through the trunk's input contract (what its pretext task trained it on). Counts frames,
    passes and the seconds spent, for the throughput report.
    """

    def __init__(self, trunk: Backbone, layer: str, device: torch.device, frame_size: tuple[int, int]) -> None:
        self.trunk, self.layer, self.device = trunk, layer, device
        self.contract = trunk.input_contract
        self.frames = self.passes = 0
        self.seconds = 0.0
        probe = np.zeros((1, *frame_size, 3), dtype=np.uint8)
        self.shape: tuple[int, ...] = tuple(self._forward(probe).shape[1:])
        self.frames = self.passes = 0
        self.seconds = 0.0

    def _forward(self, frames: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        batch = torch.from_numpy(np.stack([self.contract(frame) for frame in frames]))
        with torch.inference_mode():
            features = self.trunk(batch.to(self.device), [self.layer])[self.layer].float().cpu().numpy()
        self.seconds += time.perf_counter() - start
        self.frames += len(frames)
        self.passes += 1
        return features

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Features of a batch of frames."""
        return self._forward(np.asarray(frames))


class TrunkFeatures(VecEnvWrapper):
    """Turns the frames of a vectorised env into trunk features: the current frames of all envs, plus the last
    frame of each episode that just ended (SB3 bootstraps truncated episodes from it), in ONE trunk pass."""

    def __init__(self, venv: VecEnv, encoder: FrameEncoder) -> None:
        space = spaces.Box(-np.inf, np.inf, shape=encoder.shape, dtype=np.float32)
        super().__init__(venv, observation_space=space)
        self.encoder = encoder
        self.env_seconds = 0.0

    def reset(self) -> np.ndarray:
        start = time.perf_counter()
        frames = self.venv.reset()
        self.env_seconds += time.perf_counter() - start
        return self.encoder(frames)

    def step_wait(self):
        start = time.perf_counter()
        frames, rewards, dones, infos = self.venv.step_wait()
        self.env_seconds += time.perf_counter() - start
        ended = [i for i, info in enumerate(infos) if "terminal_observation" in info]
        if ended:
            frames = np.concatenate([frames, np.stack([infos[i]["terminal_observation"] for i in ended])])
        features = self.encoder(frames)
        for row, i in enumerate(ended, start=self.num_envs):
            infos[i]["terminal_observation"] = features[row]
        return features[: self.num_envs], rewards, dones, infos


class CompressTrunkFeatures(BaseFeaturesExtractor):
    """The agent's learned encoder on top of the frozen map: normalise each map (so trunks of any scale train
    alike), a 3×3 conv down to ``channels``, then a linear layer to ``features_dim``."""

    def __init__(self, observation_space: spaces.Box, channels: int = 32, features_dim: int = 256) -> None:
        super().__init__(observation_space, features_dim)
        in_channels, height, width = observation_space.shape
        self.net = nn.Sequential(
            nn.GroupNorm(1, in_channels, affine=False),
            nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(channels * height * width, features_dim),
            nn.ReLU(),
        )

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)
