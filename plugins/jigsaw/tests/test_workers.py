"""The sample pipeline is picklable and runs in DataLoader worker processes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sslreg_jigsaw import Jigsaw
from torch.utils.data import DataLoader, Dataset


class PuzzleSet(Dataset):
    """Images -> jigsaw samples, one deterministic Generator per index (seed, index)."""

    def __init__(self, task: Jigsaw, images: list[np.ndarray], seed: int = 0) -> None:
        self.task, self.images, self.seed = task, images, seed

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        return self.task.make_sample(self.images[index % len(self.images)], rng)


def test_task_pickles_and_gives_the_same_samples(make_task, photos) -> None:
    task = make_task(num_permutations=100)
    clone = pickle.loads(pickle.dumps(task))
    np.testing.assert_array_equal(clone.permutations, task.permutations)
    a = task.make_sample(photos[0], np.random.default_rng(3))
    b = clone.make_sample(photos[0], np.random.default_rng(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def check_loader(task: Jigsaw, photos: list[np.ndarray], context: str) -> None:
    dataset = PuzzleSet(task, photos)
    expected = [dataset[i] for i in range(len(dataset))]
    loader = DataLoader(dataset, batch_size=4, num_workers=2, multiprocessing_context=context)
    got = list(loader)
    assert [tuple(tiles.shape) for tiles, _ in got] == [(4, 9, 3, 28, 28)] * 2
    assert torch.equal(torch.cat([tiles for tiles, _ in got]), torch.stack([e[0] for e in expected]))
    assert torch.cat([t for _, t in got]).tolist() == [int(e[1]) for e in expected]


def test_dataloader_with_two_workers_matches_the_main_process(make_task, photos) -> None:
    check_loader(make_task(num_permutations=100), photos, "fork")


@pytest.mark.slow
def test_dataloader_with_spawned_workers(make_task, photos) -> None:
    """Spawned workers receive the task by pickling (the default on macOS and Windows); slow to start."""
    check_loader(make_task(num_permutations=100), photos, "spawn")
