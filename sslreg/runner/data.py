"""The pretraining data path: a PretextTask's ``make_sample`` as the per-sample transform of the core adapter.

Batching, seeding, rank/worker sharding and bad-image counting are :mod:`sslreg.data`'s; this module only says
what one pretraining sample is, and draws the images a task may fit data-dependent state on (``task.prepare``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sslreg.calls import plugin_call
from sslreg.dataset import DatasetSource, Sample
from sslreg.pretext import PretextTask


@dataclass(frozen=True)
class PretextTransform:
    """One training pair ``task.make_sample(image, rng)`` per sample (picklable: runs in DataLoader workers)."""

    task: PretextTask

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Any:
        with plugin_call(self.task, "make_sample"):
            return self.task.make_sample(sample.image, rng)


def prepare_images(source: DatasetSource, limit: int, seed: int) -> Iterator[np.ndarray]:
    """Up to ``limit`` readable training images, a deterministic random sample (for ``task.prepare``)."""
    if source.is_stream:
        count = 0
        for sample in source.stream(0, 1, 0):
            if count >= limit:
                return
            if sample is not None:
                count += 1
                yield sample.image
        return
    size = len(source)
    rng = np.random.default_rng([seed, 7919])
    order = rng.choice(size, limit, replace=False) if size > limit else range(size)  # no size-long permutation
    for index in order:
        sample = source.load(int(index))
        if sample is not None:
            yield sample.image
