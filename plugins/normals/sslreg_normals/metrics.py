"""Surface-normal metrics over the valid pixels of a whole test set, in bounded memory (Fouhey et al.'s five numbers).

The reference keeps every pixel's error of the test set in memory and takes the median of them all (~150 GB of
RAM). Here each batch updates exact running sums (the mean, the counts within 11.25°, 22.5° and 30°) and a
histogram of the errors with bins of 0.001° over [0°, 180°] (180,001 counts and 180,001 sums, 2.9 MB): the median is
the mean of the errors in the bin that holds the middle rank (numpy's rule for an even count: the mean of the two
middle ranks' values), so it is within 0.001° of the exact median of all pixels, and exact when the errors of that
bin are equal. Memory does not grow with the number of pixels; accumulators add, so DDP ranks (or data shards)
merge exactly.
"""

from __future__ import annotations

import math

import torch

#: The "% within t°" thresholds of the protocol (strictly below, as the reference's ``E < t``).
THRESHOLDS = (11.25, 22.5, 30.0)
#: Histogram bin width in degrees: the median is exact to it.
BIN_WIDTH = 1e-3
#: Valid pixels processed at once (bounds the temporaries to a few tens of MB).
CHUNK = 1 << 19


def angular_errors(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Angles in degrees between rows of (M, 3) vectors (float32 or float64 as given); neither needs unit length.

    atan2(|p x g|, p . g) is well conditioned at every angle: in float32 it is within ~1e-5° of the exact angle,
    where arccos of a float32 dot product is ~0.02° off near 0°. A zero prediction counts as 90° off.
    """
    if not pred.is_floating_point() or pred.dtype == torch.float16 or pred.dtype == torch.bfloat16:
        pred = pred.float()
    truth = truth.to(pred.dtype)
    sine = torch.linalg.vector_norm(torch.linalg.cross(pred, truth, dim=1), dim=1)
    cosine = (pred * truth).sum(dim=1)
    angles = torch.rad2deg(torch.atan2(sine, cosine))
    return torch.where(torch.linalg.vector_norm(pred, dim=1) > 0, angles, torch.full_like(angles, 90.0))


class NormalErrors:
    """Streaming mean / median angular error and % within 11.25°, 22.5°, 30° over valid pixels."""

    def __init__(self, device: torch.device | str = "cpu", bin_width: float = BIN_WIDTH) -> None:
        self.bin_width = bin_width
        self.bins = int(round(180.0 / bin_width)) + 1
        self.histogram = torch.zeros(self.bins, dtype=torch.int64, device=device)
        self.sums = torch.zeros(self.bins, dtype=torch.float64, device=device)
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.within = torch.zeros(len(THRESHOLDS), dtype=torch.int64, device=device)

    @property
    def count(self) -> int:
        """Valid pixels seen."""
        return int(self.histogram.sum())

    def update(self, pred: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> None:
        """Add a batch: predictions and ground truth (N, 3, H, W), ``valid`` (N, H, W) bool."""
        mask = valid.to(self.histogram.device, torch.bool)
        pred = pred.to(self.histogram.device).permute(0, 2, 3, 1)[mask]
        truth = truth.to(self.histogram.device).permute(0, 2, 3, 1)[mask]
        for start in range(0, len(pred), CHUNK):
            self.add_errors(angular_errors(pred[start : start + CHUNK], truth[start : start + CHUNK]))

    def add_errors(self, errors: torch.Tensor) -> None:
        """Add per-pixel errors in degrees (1-D); sums are kept in float64."""
        errors = errors.to(self.histogram.device, torch.float64)
        for index, threshold in enumerate(THRESHOLDS):
            self.within[index] += (errors < threshold).sum()
        bins = torch.clamp((errors / self.bin_width).long(), 0, self.bins - 1)
        self.histogram += torch.bincount(bins, minlength=self.bins)
        self.total += errors.sum()
        self.sums.index_add_(0, bins, errors)

    def merge(self, other: NormalErrors) -> None:
        """Add another accumulator's pixels (another shard of the test set)."""
        self.histogram += other.histogram.to(self.histogram.device)
        self.sums += other.sums.to(self.histogram.device)
        self.total += other.total.to(self.histogram.device)
        self.within += other.within.to(self.histogram.device)

    def all_reduce(self) -> None:
        """Sum the accumulators of every DDP rank (no-op without torch.distributed)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for tensor in (self.histogram, self.sums, self.total, self.within):
                torch.distributed.all_reduce(tensor)

    def _rank_value(self, rank: int, cumulative: torch.Tensor) -> float:
        """The ``rank``-th smallest error (0-based), as the mean of the errors in its bin."""
        index = int(torch.searchsorted(cumulative, torch.tensor(rank + 1, device=cumulative.device)))
        return float(self.sums[index]) / int(self.histogram[index])

    def median(self) -> float:
        """Median error in degrees, numpy's convention (mean of the two middle values for an even count)."""
        count = self.count
        if count == 0:
            return math.nan
        cumulative = torch.cumsum(self.histogram, 0)
        low, high = (count - 1) // 2, count // 2
        return 0.5 * (self._rank_value(low, cumulative) + self._rank_value(high, cumulative))

    def summary(self) -> dict[str, float]:
        """The five numbers: mean and median error (°), and % of pixels within 11.25°, 22.5°, 30°."""
        count = self.count
        if count == 0:
            return {"mean": math.nan, "median": math.nan, **{f"{t:g}": math.nan for t in THRESHOLDS}}
        result = {"mean": float(self.total) / count, "median": self.median()}
        for index, threshold in enumerate(THRESHOLDS):
            result[f"{threshold:g}"] = 100.0 * int(self.within[index]) / count
        return result
