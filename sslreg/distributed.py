"""DDP helpers for pretext tasks: gather across ranks (with or without gradient) and shuffle-BN.

Every helper is the identity in a single process, so a task calls them unconditionally. Batches may differ in
size across ranks (a rank's unreadable images are dropped from its batch); gathers pad and trim for that.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def ensure_process_group() -> None:
    """Join torchrun's process group if this process has not yet (nccl on GPUs, gloo on CPU)."""
    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend="nccl")
    else:
        dist.init_process_group(backend="gloo")


def _sizes(tensor: torch.Tensor, world_size: int) -> list[int]:
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world_size)]
    dist.all_gather(sizes, size)
    return [int(s) for s in sizes]


def _all_gather(tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` (first dims ``sizes``) in rank order."""
    largest = max(sizes)
    padded = tensor.new_zeros((largest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


@torch.no_grad()
def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 in rank order, without gradient (e.g. keys for a queue)."""
    rank, world_size = rank_and_world()
    if world_size == 1:
        return tensor.detach()
    return _all_gather(tensor.detach(), _sizes(tensor, world_size))


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums the gradient of the gathered tensor over ranks (every rank's loss may
    depend on this rank's rows) and returns this rank's slice."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: torch.Tensor) -> torch.Tensor:
        rank, world_size = rank_and_world()
        sizes = _sizes(tensor, world_size)
        ctx.start, ctx.stop = sum(sizes[:rank]), sum(sizes[: rank + 1])  # type: ignore[attr-defined]
        return _all_gather(tensor.contiguous(), sizes)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop]  # type: ignore[attr-defined]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 in rank order, differentiable: the gradient reaching this
    rank's rows is the sum over ranks, so a loss averaged by DDP over ranks trains as one process on the global
    batch (SimCLR's negatives from every rank)."""
    if rank_and_world()[1] == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


def rank_offset(size: int, device: torch.device | str = "cpu") -> int:
    """Row of this rank's first item in a gather of ``size`` rows per rank (sizes may differ across ranks)."""
    rank, world_size = rank_and_world()
    if world_size == 1:
        return 0
    return sum(_sizes(torch.empty(size, device=device), world_size)[:rank])


def batch_shuffle(x: torch.Tensor, seed: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Shuffle-BN (MoCo): this rank's share of the global batch after a permutation that is the same on every rank
    (from ``seed``, e.g. the iteration), and the function that puts the encoded rows back in this rank's order.

    Encoding the shuffled share makes each rank's BatchNorm statistics come from samples of other ranks, so the
    key encoder cannot cheat through them. One process: no shuffle (BN statistics of one batch do not depend on
    its order).
    """
    rank, world_size = rank_and_world()
    if world_size == 1:
        return x, lambda encoded: encoded
    with torch.no_grad():
        sizes = _sizes(x, world_size)
        everything = _all_gather(x.detach(), sizes)
        order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(seed)).to(x.device)
        start, stop = sum(sizes[:rank]), sum(sizes[: rank + 1])
        inverse = torch.argsort(order)

    def unshuffle(encoded: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return _all_gather(encoded.detach(), sizes)[inverse[start:stop]]

    return everything[order[start:stop]], unshuffle


__all__ = ["batch_shuffle", "gather", "gather_with_grad", "rank_and_world", "rank_offset"]
