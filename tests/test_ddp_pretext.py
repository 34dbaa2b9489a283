"""Two gloo processes against the math of one: SimCLR's NT-Xent with negatives from every process equals the
single-process loss on the concatenated batch (loss and DDP-averaged gradients); shuffle-BN encodes keys with
BatchNorm statistics of the shuffled shares; a MoCo v2 step under DDP (shuffle-BN, queue of every process's
keys) equals its single-process reconstruction."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
import ddp_helpers as h

pytest.importorskip("sslreg_simclr")
pytest.importorskip("sslreg_moco_v2")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("ddp")
    mp.start_processes(h.worker, args=(str(folder),), nprocs=h.WORLD, start_method="fork")
    return [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in range(h.WORLD)]


def shares(order: torch.Tensor) -> list[torch.Tensor]:
    return [order[rank * h.PER_RANK : (rank + 1) * h.PER_RANK] for rank in range(h.WORLD)]


def test_simclr_global_negatives_train_as_one_process(ranks):
    from sslreg_simclr import nt_xent

    batch, head = h.data(), h.projection()
    loss, _ = nt_xent(head(batch["z1"]), head(batch["z2"]), 0.5)
    loss.backward()
    per_rank = ranks[0]["simclr_loss"]
    torch.testing.assert_close(per_rank, ranks[1]["simclr_loss"])
    torch.testing.assert_close(per_rank.mean(), loss.detach())
    assert not torch.allclose(per_rank[0], per_rank[1])  # each process has its own anchors
    for rank in ranks:
        for got, expected in zip(rank["simclr_grads"], [p.grad for p in head.parameters()]):
            torch.testing.assert_close(got, expected)


def test_shuffle_bn_encodes_keys_on_shuffled_shares(ranks):
    batch, encoder = h.data(), h.key_encoder()
    order = torch.randperm(h.WORLD * h.PER_RANK, generator=torch.Generator().manual_seed(7))
    expected = torch.empty(h.WORLD * h.PER_RANK, 5)
    for share in shares(order):  # each process encodes its share of the shuffled batch, BN over that share
        expected[share] = encoder(batch["z1"][share]).detach()
    got = ranks[0]["shuffled_keys"]
    torch.testing.assert_close(got, ranks[1]["shuffled_keys"])
    torch.testing.assert_close(got, expected)
    unshuffled = torch.cat([encoder(batch["z1"][s]).detach() for s in shares(torch.arange(8))])
    assert not torch.allclose(got, unshuffled, atol=1e-3)  # the shuffle changed the statistics


def test_moco_v2_step_under_ddp_matches_its_reconstruction(ranks):
    from sslreg_moco_v2 import info_nce

    batch = h.data()
    task, model = h.moco_task_and_model()
    queue = model.queue.clone()
    order = torch.randperm(h.WORLD * h.PER_RANK, generator=torch.Generator().manual_seed(5))  # seed = iteration
    keys = torch.empty(h.WORLD * h.PER_RANK, 8)
    with torch.no_grad():
        for share in shares(order):
            keys[share] = model.embed(model.key_trunk, model.key_head, batch["views"][share, 1])
    losses = []
    for mine in shares(torch.arange(8)):
        q = model.embed(model.trunk, model.head, batch["views"][mine, 0])  # query BN: the process's own batch
        loss, _ = info_nce(q, keys[mine], queue, 0.2)
        (loss / h.WORLD).backward()  # DDP averages the processes' gradients
        losses.append(loss.detach())
    torch.testing.assert_close(ranks[0]["moco_keys"], keys)
    torch.testing.assert_close(ranks[0]["moco_loss"], torch.stack(losses))
    expected_grads = [p.grad for p in [*model.trunk.parameters(), *model.head.parameters()]]
    for got, expected in zip(ranks[0]["moco_grads"], expected_grads):
        torch.testing.assert_close(got, expected)
    state = ranks[0]["moco_state"]
    for key, value in ranks[1]["moco_state"].items():  # the same state in every process but BN statistics
        if "running_" not in key:
            torch.testing.assert_close(value, state[key])
    torch.testing.assert_close(state["queue"][:8], keys)  # both processes' keys, in rank order
    torch.testing.assert_close(state["queue"][8:], queue[8:])
    assert int(state["queue_ptr"]) == 8


def test_gathers_take_batches_of_different_sizes(ranks):
    """Rank 0 gives 2 rows, rank 1 gives 3 (a rank's unreadable images are dropped from its batch)."""
    for rank in ranks:
        assert rank["ragged"].flatten().tolist() == [0.0, 1.0, 10.0, 11.0, 12.0]
    assert [rank["ragged_offset"] for rank in ranks] == [0, 2]
    # every process's loss is sum(row_i * (i + 1)) over the gathered rows: each row's gradient sums the two
    assert ranks[0]["ragged_grad"].flatten().tolist() == [2.0, 4.0]
    assert ranks[1]["ragged_grad"].flatten().tolist() == [6.0, 8.0, 10.0]
