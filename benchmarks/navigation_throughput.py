"""navigation: frames per second of the whole PPO loop, and env-step time ÷ trunk-forward time per frame.

Measures, in one run on the same frames: MiniWorld stepping (render included) per frame; the frozen trunk's
forward per frame batched over the vectorised envs, and one frame at a time (the baseline batching replaces);
then PPO training end to end (env + trunk + policy updates) in frames per second, with its time split.
    OMP_NUM_THREADS=2 python benchmarks/navigation_throughput.py [--backbone resnet18] [--layer res4]
        [--env MiniWorld-OneRoomS6Fast-v0] [--frame 60 80] [--n-envs 8] [--frames 2048] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sslreg_navigation.agent import PPOSettings, train
from sslreg_navigation.env import env_factory, open_envs
from sslreg_navigation.features import FrameEncoder

from sslreg import build_trunk, get_registry


def env_seconds_per_frame(envs, steps: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """Random actions in every env; returns seconds per frame and the frames of the last step."""
    frames = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])
    start = time.perf_counter()
    for _ in range(steps):
        batch = []
        for env in envs:
            frame, _, terminated, truncated, _ = env.step(int(rng.integers(3)))
            batch.append(env.reset()[0] if terminated or truncated else frame)
        frames = np.stack(batch)
    return (time.perf_counter() - start) / (steps * len(envs)), frames


def trunk_seconds_per_frame(encoder: FrameEncoder, frames: np.ndarray, repeats: int, batched: bool) -> float:
    encoder(frames)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        if batched:
            encoder(frames)
        else:
            for frame in frames:
                encoder(frame[None])
    return (time.perf_counter() - start) / (repeats * len(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--layer", default="res4")
    parser.add_argument("--env", default="MiniWorld-OneRoomS6Fast-v0")
    parser.add_argument("--frame", type=int, nargs=2, default=(60, 80), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=2048, help="PPO training frames for the whole-loop figure")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    frame_size = tuple(args.frame)
    trunk = build_trunk(get_registry(), {"name": args.backbone}, seed=0).freeze().to(device)
    encoder = FrameEncoder(trunk, args.layer, device, frame_size)
    with open_envs(env_factory(args.env, frame_size), args.n_envs) as envs:
        env_step, frames = env_seconds_per_frame(envs, 40, np.random.default_rng(0))
    trunk_batched = trunk_seconds_per_frame(encoder, frames, 5, batched=True)
    trunk_single = trunk_seconds_per_frame(encoder, frames, 2, batched=False)

    settings = PPOSettings(n_envs=args.n_envs, n_steps=64, batch_size=128)
    encoder = FrameEncoder(trunk, args.layer, device, frame_size)
    with open_envs(env_factory(args.env, frame_size, progress_reward=1.0), args.n_envs) as envs:
        trained = train(envs, encoder, settings, args.frames, seed=0)
    seconds = trained.seconds
    share = {"env": trained.env_seconds / seconds, "trunk": trained.trunk_seconds / seconds}
    share["PPO"] = 1.0 - share["env"] - share["trunk"]

    print(
        f"{args.backbone} {args.layer} on {args.env}, {frame_size[0]}x{frame_size[1]} frames, {args.n_envs} envs,"
        f" {device.type}, {torch.get_num_threads()} threads"
    )
    print(f"env step (render included):        {1000 * env_step:7.2f} ms/frame")
    print(f"trunk forward, batched x{args.n_envs}:        {1000 * trunk_batched:7.2f} ms/frame")
    print(f"trunk forward, one frame at a time: {1000 * trunk_single:7.2f} ms/frame (baseline)")
    print(f"batching speed-up (single/batched): {trunk_single / trunk_batched:7.2f}x")
    print(f"env step / trunk forward (batched): {env_step / trunk_batched:7.2f}")
    split = ", ".join(f"{part} {fraction:.0%}" for part, fraction in share.items())
    print(
        f"whole PPO loop: {trained.frames} frames in {seconds:.1f} s = {trained.frames / seconds:.1f} frames/s; {split}"
    )


if __name__ == "__main__":
    main()
