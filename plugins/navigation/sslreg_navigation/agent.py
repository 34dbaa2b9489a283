"""The agent: stable-baselines3 PPO on frozen trunk features (vectorised envs, one trunk pass per step of all of
them), and its evaluation on a fixed list of seeded episodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.common.vec_env import DummyVecEnv

from sslreg_navigation.env import NavigationTask
from sslreg_navigation.features import CompressTrunkFeatures, FrameEncoder, TrunkFeatures
from sslreg_navigation.metrics import Episode

#: Maps a batch of observations (trunk features, or frames for a policy without a trunk) to actions.
Policy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PPOSettings:
    """PPO and the agent's encoder: the options of :class:`sslreg_navigation.NavigationConfig` that shape training."""

    n_envs: int = 8
    n_steps: int = 64
    batch_size: int = 128
    epochs: int = 4
    lr: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    conv_channels: int = 32
    features_dim: int = 256


class EpisodeLog(BaseCallback):
    """Collects the episodes that end during training (``info['navigation']``)."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[Episode] = []

    def _on_step(self) -> bool:
        self.episodes.extend(info["navigation"] for info in self.locals["infos"] if "navigation" in info)
        return True


@dataclass
class Training:
    """A trained agent and how its training went."""

    model: PPO
    episodes: list[Episode]
    frames: int
    seconds: float
    env_seconds: float
    trunk_seconds: float
    trunk_passes: int


def train(
    envs: Sequence[NavigationTask], encoder: FrameEncoder, settings: PPOSettings, frames: int, seed: int
) -> Training:
    """PPO for ``frames`` env frames (rounded up to whole rollouts) from a fresh policy seeded by ``seed``; env k
    starts from seed ``seed + k`` (the envs are reused across agents: a seeded reset starts them afresh)."""
    venv = TrunkFeatures(DummyVecEnv([lambda env=env: env for env in envs]), encoder)
    model = PPO(
        ActorCriticCnnPolicy,
        venv,
        n_steps=settings.n_steps,
        batch_size=settings.batch_size,
        n_epochs=settings.epochs,
        learning_rate=settings.lr,
        gamma=settings.gamma,
        gae_lambda=settings.gae_lambda,
        clip_range=settings.clip_range,
        ent_coef=settings.ent_coef,
        policy_kwargs={
            "features_extractor_class": CompressTrunkFeatures,
            "features_extractor_kwargs": {"channels": settings.conv_channels, "features_dim": settings.features_dim},
            "net_arch": {"pi": [64], "vf": [64]},
        },
        seed=seed,
        device=encoder.device,
        verbose=0,
    )
    log = EpisodeLog()
    start = time.perf_counter()
    model.learn(total_timesteps=frames, callback=log, progress_bar=False)
    seconds = time.perf_counter() - start
    return Training(
        model, log.episodes, int(model.num_timesteps), seconds, venv.env_seconds, encoder.seconds, encoder.passes
    )


def sampling_policy(model: PPO, seed: int) -> Policy:
    """The trained policy as trained: actions sampled from its distribution, from a generator of its own."""
    generator = torch.Generator(device=model.device).manual_seed(seed)

    def act(features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            obs = torch.as_tensor(features, device=model.device)
            probs = model.policy.get_distribution(obs).distribution.probs
            return torch.multinomial(probs, 1, generator=generator).squeeze(1).cpu().numpy()

    return act


def random_policy(num_actions: int, seed: int) -> Policy:
    """Uniformly random actions (the no-learning reference on the same episodes)."""
    rng = np.random.default_rng(seed)
    return lambda batch: rng.integers(0, num_actions, size=len(batch))


def evaluation_seeds(env: NavigationTask, first: int, count: int) -> list[int]:
    """The first ``count`` seeds from ``first`` on whose episode does not start inside the goal region."""
    seeds, seed = [], first
    while len(seeds) < count:
        env.reset(seed=seed)
        if env.shortest() > 0:
            seeds.append(seed)
        seed += 1
    return seeds


def run_episodes(
    envs: Sequence[NavigationTask], seeds: Sequence[int], policy: Policy, encoder: FrameEncoder | None
) -> list[Episode]:
    """One episode per seed, ``len(envs)`` at a time; each step encodes the frames of all running envs in one
    pass. Returns the episodes in seed order."""
    envs = envs[: len(seeds)]
    pending = list(enumerate(seeds))
    running: dict[int, tuple[int, np.ndarray]] = {}  # env slot -> (episode index, current frame)
    done: dict[int, Episode] = {}

    def start(slot: int) -> None:
        index, seed = pending.pop(0)
        frame, _ = envs[slot].reset(seed=seed)
        running[slot] = (index, frame)

    for slot in range(len(envs)):
        start(slot)
    while running:
        slots = sorted(running)
        frames = np.stack([running[slot][1] for slot in slots])
        actions = policy(encoder(frames) if encoder is not None else frames)
        for slot, action in zip(slots, actions):
            index = running[slot][0]
            frame, _, terminated, truncated, info = envs[slot].step(int(action))
            if terminated or truncated:
                done[index] = info["navigation"]
                del running[slot]
                if pending:
                    start(slot)
            else:
                running[slot] = (index, frame)
    return [done[index] for index in range(len(seeds))]
