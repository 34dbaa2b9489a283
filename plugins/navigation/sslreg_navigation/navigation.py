"""The ``navigation`` evaluator: PPO agents whose encoder is a frozen trunk layer, scored by success and SPL.

For each requested layer and each run, a fresh agent learns a MiniWorld object-goal task (reach the red box from
RGB frames) for ``frames`` env frames; its encoder is the frozen trunk's map at that layer (one no-grad pass per
batch of frames from the vectorised envs) compressed by a small learned conv. Every agent is then scored on the
same seeded evaluation episodes. Protocol: docs/protocol.md#visual-navigation.
"""

from __future__ import annotations

import logging
import re
import time
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from sslreg import (
    Backbone,
    EvalContext,
    EvalResult,
    Evaluator,
    EvaluatorConfig,
    LayerScore,
    UserError,
    resolve_device,
)

logger = logging.getLogger(__name__)


class NavigationConfig(EvaluatorConfig):
    """Options of ``navigation``. Defaults are sized for a CPU demo; descriptions give the paper's values."""

    env: str = Field(
        "MiniWorld-OneRoomS6Fast-v0",
        description="MiniWorld box-reaching env id (OneRoom[S6[Fast]], Hallway, TMaze, YMaze, FourRooms, Maze...);"
        " the paper used Gibson scenes, which need Sax et al.'s docker image.",
    )
    frame_size: tuple[int, int] = Field(
        (60, 80), description="Rendered RGB frame (height, width) that the trunk sees, as MiniWorld's default."
    )
    frames: int = Field(4096, ge=1, description="Env frames of training per agent (paper: 400k).")
    runs: int = Field(2, ge=1, le=100, description="Independent agents per layer, mean ± std over them (paper: 5).")
    max_episode_steps: int | None = Field(
        None, ge=1, description="Steps before an episode is cut off (None: the env's own limit)."
    )
    progress_reward: float = Field(
        1.0,
        ge=0.0,
        description="Reward per metre of geodesic progress toward the goal, on top of MiniWorld's sparse reward"
        " for reaching it (0: the sparse reward alone).",
    )
    n_envs: int = Field(8, ge=1, le=256, description="Vectorised envs; the trunk encodes their frames in one pass.")
    n_steps: int = Field(64, ge=2, description="PPO rollout length per env (one update every n_envs × n_steps).")
    batch_size: int = Field(128, ge=2, description="PPO minibatch size.")
    epochs: int = Field(4, ge=1, le=100, description="PPO epochs per rollout.")
    lr: float = Field(3e-4, gt=0.0, le=1.0, description="Adam learning rate of the policy (the trunk stays frozen).")
    gamma: float = Field(0.99, gt=0.0, le=1.0, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0, description="GAE lambda.")
    clip_range: float = Field(0.2, gt=0.0, le=1.0, description="PPO clipping.")
    ent_coef: float = Field(0.01, ge=0.0, description="Entropy bonus.")
    conv_channels: int = Field(
        32, ge=1, le=1024, description="Channels of the learned 3×3 conv that compresses the trunk's map."
    )
    features_dim: int = Field(256, ge=1, le=8192, description="Width of the agent's feature vector after the conv.")
    eval_episodes: int = Field(
        50, ge=1, le=100_000, description="Seeded evaluation episodes, the same for every agent and trunk."
    )
    eval_seed: int = Field(
        1_000_000,
        ge=0,
        description="Evaluation episode i is the i-th seed from this one whose start is outside the goal region.",
    )
    device: str | None = Field(None, description="Torch device of the trunk and the agent (None: the runner's).")
    seed: int | None = Field(None, ge=0, description="Seed of the agents and training envs (None: the experiment's).")

    @field_validator("env")
    @classmethod
    def _miniworld(cls, env: str) -> str:
        if not re.fullmatch(r"MiniWorld-\w+-v\d+", env):
            raise ValueError(f"not a MiniWorld env id: {env!r} (e.g. 'MiniWorld-OneRoom-v0')")
        return env

    @field_validator("frame_size")
    @classmethod
    def _frame(cls, size: tuple[int, int]) -> tuple[int, int]:
        if min(size) < 16 or max(size) > 1024:
            raise ValueError(f"frame_size: each side must be 16-1024 pixels, got {size}")
        return size

    @model_validator(mode="after")
    def _minibatch(self) -> NavigationConfig:
        if self.batch_size > self.n_envs * self.n_steps:
            raise ValueError(
                f"batch_size {self.batch_size} exceeds one rollout (n_envs × n_steps = {self.n_envs * self.n_steps})"
            )
        return self


def run_seed(seed: int, run: int) -> int:
    """Seed of run ``run``: far from other runs' (each env of a run adds its index) and from the eval seeds."""
    return int(np.random.SeedSequence([seed, run]).generate_state(1)[0] >> 2)


class Navigation(Evaluator):
    """Visual navigation: PPO agents on frozen trunk features (res3/res4/res5 in the paper); success and SPL."""

    name: ClassVar[str] = "navigation"
    Config: ClassVar[type[NavigationConfig]] = NavigationConfig
    consumes: ClassVar[str] = "a frozen Backbone; a MiniWorld env rendered headless (EGL), no dataset"
    produces: ClassVar[str] = "success rate and SPL (%) per layer, mean ± std over runs"

    config: NavigationConfig

    @classmethod
    def check(cls, config: NavigationConfig) -> list[str]:
        """Headless OpenGL must work (probed in a child process): found at validation, before any pretraining."""
        from sslreg_navigation.gl import gl_renderer

        try:
            gl_renderer()
        except UserError as error:
            return [str(error)]
        return []

    def evaluate(self, backbone: Backbone, context: EvalContext) -> list[EvalResult]:
        """Train ``runs`` agents per layer and score each on the fixed evaluation episodes."""
        from sslreg_navigation.gl import gl_renderer

        renderer = gl_renderer()  # first, so that missing GL is one line before any work
        from sslreg_navigation.agent import PPOSettings, evaluation_seeds, random_policy, run_episodes
        from sslreg_navigation.env import env_factory, open_envs
        from sslreg_navigation.metrics import spl, success_rate

        cfg = self.config
        device = resolve_device(cfg.device, context.device)
        seed = context.seed if cfg.seed is None else cfg.seed
        layers = backbone.resolve_layers(cfg.layers)
        backbone.input_contract  # noqa: B018 - fails here, before any work, for a trunk without a contract
        backbone.freeze().to(device)
        steps = {"max_episode_steps": cfg.max_episode_steps}
        train_env = env_factory(cfg.env, cfg.frame_size, progress_reward=cfg.progress_reward, **steps)
        eval_env = env_factory(cfg.env, cfg.frame_size, measure=True, **steps)
        settings = PPOSettings(**{name: getattr(cfg, name) for name in PPOSettings.__dataclass_fields__})
        # The envs are made once (a GL context each) and shared by all agents: a seeded reset starts them afresh.
        with open_envs(train_env, cfg.n_envs) as train_envs, open_envs(eval_env, cfg.n_envs) as eval_envs:
            seeds = evaluation_seeds(eval_envs[0], cfg.eval_seed, cfg.eval_episodes)
            baseline = run_episodes(eval_envs, seeds, random_policy(int(eval_envs[0].action_space.n), seed), None)
            agents = {
                layer: [
                    self._agent(backbone, layer, run, seed, device, settings, train_envs, eval_envs, seeds)
                    for run in range(cfg.runs)
                ]
                for layer in layers
            }
        details = {
            "env": cfg.env,
            "frame_size": list(cfg.frame_size),
            "frames_per_run": cfg.frames,
            "runs": cfg.runs,
            "eval_episodes": len(seeds),
            "eval_seeds": [seeds[0], seeds[-1]],
            "units": "percent of evaluation episodes (SPL: percent of the shortest-path optimum)",
            "random_policy": {"success": 100.0 * success_rate(baseline), "SPL": 100.0 * spl(baseline)},
            "per_run": agents,
            "renderer": renderer,
        }

        def result(metric: str) -> EvalResult:
            scores = {layer: LayerScore.of([run[metric] for run in agents[layer]]) for layer in layers}
            return EvalResult(evaluator=self.name, metric=metric, layers=scores, details=details)

        return [result("success"), result("SPL")]

    def _agent(self, backbone, layer, run, seed, device, settings, train_envs, eval_envs, seeds) -> dict:
        """Train one agent on ``layer`` and score it on the evaluation episodes; returns its numbers."""
        from sslreg_navigation.agent import run_episodes, sampling_policy, train
        from sslreg_navigation.features import FrameEncoder
        from sslreg_navigation.metrics import spl, success_rate

        cfg = self.config
        started = time.perf_counter()
        encoder = FrameEncoder(backbone, layer, device, cfg.frame_size)
        trained = train(train_envs, encoder, settings, cfg.frames, run_seed(seed, run))
        episodes = run_episodes(eval_envs, seeds, sampling_policy(trained.model, cfg.eval_seed), encoder)
        last = trained.episodes[-100:]
        numbers = {
            "success": 100.0 * success_rate(episodes),
            "SPL": 100.0 * spl(episodes),
            "feature_shape": list(encoder.shape),
            "train_frames": trained.frames,
            "train_episodes": len(trained.episodes),
            "train_success_last_100": 100.0 * success_rate(last) if last else None,
            "fps": trained.frames / trained.seconds,
            "env_seconds": trained.env_seconds,
            "trunk_seconds": trained.trunk_seconds,
            "trunk_passes": trained.trunk_passes,
            "train_seconds": trained.seconds,
            "seconds": time.perf_counter() - started,
        }
        logger.info("navigation %s run %d/%d: %s", layer, run + 1, cfg.runs, numbers)
        return numbers
