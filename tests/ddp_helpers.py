"""The 2-process side of tests/test_ddp_pretext.py: each gloo process computes SimCLR's NT-Xent on its half of a
global batch, a shuffle-BN key encoding, and one MoCo v2 step, and saves what it got for the test to check."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from sslreg import gather
from sslreg.backbone import BackboneConfig
from sslreg.testing import TinyBackbone

WORLD = 2
PER_RANK = 4


class BatchNormTiny(TinyBackbone):
    """TinyBackbone with BatchNorm in its second layer (so batch statistics matter)."""

    def __init__(self) -> None:
        super().__init__(BackboneConfig(name="tiny"))
        self.l2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())


def data() -> dict[str, torch.Tensor]:
    """The global batch every process starts from (the same on all of them)."""
    generator = torch.Generator().manual_seed(0)
    return {
        "z1": torch.randn(WORLD * PER_RANK, 6, generator=generator),
        "z2": torch.randn(WORLD * PER_RANK, 6, generator=generator),
        "views": torch.randn(WORLD * PER_RANK, 2, 3, 16, 16, generator=generator),
    }


def projection() -> nn.Module:
    torch.manual_seed(1)
    return nn.Linear(6, 5)


def key_encoder() -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5))


def moco_task_and_model() -> tuple:
    from sslreg_moco_v2 import MocoV2, MocoV2Config

    task = MocoV2(MocoV2Config(queue_size=12, dim=8, momentum=0.5, temperature=0.2))
    torch.manual_seed(3)
    return task, task.build_model(BatchNormTiny())


def averaged_grads(module: nn.Module) -> list[torch.Tensor]:
    """Gradients averaged over processes, as DDP does."""
    grads = []
    for parameter in module.parameters():
        if parameter.grad is not None:
            grad = parameter.grad.clone()
            dist.all_reduce(grad)
            grads.append(grad / dist.get_world_size())
    return grads


def worker(rank: int, folder: str) -> None:
    from sslreg_moco_v2 import MocoV2  # noqa: F401 - imported before the process group, like a run
    from sslreg_simclr import nt_xent

    from sslreg import StepContext, batch_shuffle, gather_with_grad, rank_offset

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=WORLD)
    batch, mine = data(), slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    out: dict[str, object] = {}

    head = projection()
    loss, _ = nt_xent(head(batch["z1"][mine]), head(batch["z2"][mine]), 0.5)
    loss.backward()
    out["simclr_loss"] = gather(loss.detach().reshape(1))
    out["simclr_grads"] = averaged_grads(head)

    encoder = key_encoder()
    shuffled, unshuffle = batch_shuffle(batch["z1"][mine], seed=7)
    out["shuffled_keys"] = gather(unshuffle(encoder(shuffled)))

    ragged = torch.arange(2 + rank, dtype=torch.float32).reshape(-1, 1) + 10 * rank
    out["ragged"] = gather(ragged)
    ragged.requires_grad_(True)
    gathered = gather_with_grad(ragged)
    (gathered * torch.arange(1.0, len(gathered) + 1).reshape(-1, 1)).sum().backward()
    out["ragged_grad"] = ragged.grad
    out["ragged_offset"] = rank_offset(len(ragged))

    task, model = moco_task_and_model()
    context = StepContext(iteration=5, max_iters=10, world_size=WORLD, rank=rank)
    result = task.loss(model, batch["views"][mine], None, context=context)
    result["loss"].backward()
    out["moco_loss"] = gather(result["loss"].detach().reshape(1))
    out["moco_grads"] = averaged_grads(model.trunk) + averaged_grads(model.head)
    out["moco_keys"] = gather(model.pending)
    with torch.no_grad():
        task.after_step(model, context)
    out["moco_state"] = {key: value.clone() for key, value in model.state_dict().items()}
    torch.save(out, Path(folder) / f"rank{rank}.pt")
    dist.destroy_process_group()
