"""Independent fits (CV folds, row chunks) in parallel threads, each running single-threaded torch.

The solver runs many small tensor operations. With torch's own (OpenMP) threads every one of them is a parallel
region whose workers spin and meet at a barrier: on a shared or oversubscribed machine a region waits for a core
to come back to each of its threads, and the whole solve slowed down by more than 10x in measurements on 2 busy
cores. Independent work in plain threads (torch releases the GIL inside its kernels), each running
single-threaded torch, uses the same cores with no barrier between them: the CV folds, which share nothing but
the kernel (splitting the classes instead would repeat each Newton step's fixed work per group: measured 40 %
more CPU time), and the rows of a kernel or of a feature-space product. (Forked processes would also run the
Python between the operations in parallel, but a child forked after OpenMP started can spin forever in its first
parallel region: measured, a hang.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")
R = TypeVar("R")


def workers_for(device: torch.device) -> int:
    """Threads to use: torch's thread count on the CPU (OMP_NUM_THREADS, torch.set_num_threads), 1 on a GPU."""
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


@contextmanager
def single_threaded_torch(active: bool = True) -> Iterator[None]:
    """torch.set_num_threads(1) for the duration (restored after), when active."""
    if not active:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def thread_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """[fn(item) for item in items], over up to ``workers`` threads (in this thread when there is one)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def kernel(X: torch.Tensor, workers: int) -> torch.Tensor:
    """X X^T + 1 (float64), its row blocks computed in parallel threads."""
    if workers <= 1 or X.device.type != "cpu":
        return X @ X.T + 1.0
    K = torch.empty(len(X), len(X), dtype=X.dtype, device=X.device)
    bounds = np.linspace(0, len(X), workers + 1).astype(int)

    def block(i: int) -> None:
        start, stop = bounds[i], bounds[i + 1]
        torch.matmul(X[start:stop], X.T, out=K[start:stop])

    thread_map(block, list(range(workers)), workers)
    return K.add_(1.0)
