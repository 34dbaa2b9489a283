"""Navigation metrics over evaluation episodes: success rate and SPL (Anderson et al. 2018, "On Evaluation of
Embodied Navigation Agents"): SPL = mean_i S_i * l_i / max(p_i, l_i), with S_i the success indicator, l_i the
shortest-path (geodesic) length from the start to the goal region and p_i the length of the path the agent took.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episode:
    """What one evaluation episode left: did it reach the goal, the shortest path, the path taken, its steps."""

    success: bool
    shortest: float
    taken: float
    steps: int


def success_rate(episodes: Sequence[Episode]) -> float:
    """Fraction of episodes that reached the goal."""
    if not episodes:
        raise ValueError("success rate of no episodes")
    return float(np.mean([episode.success for episode in episodes]))


def spl(episodes: Sequence[Episode]) -> float:
    """Success weighted by (normalised inverse) path length; an episode that starts in the goal region (l = 0)
    and succeeds without moving counts 1."""
    if not episodes:
        raise ValueError("SPL of no episodes")
    terms = []
    for episode in episodes:
        if episode.shortest < 0 or episode.taken < 0:
            raise ValueError(f"path lengths must be ≥ 0, got {episode}")
        longest = max(episode.taken, episode.shortest)
        efficiency = 1.0 if longest == 0 else episode.shortest / longest
        terms.append(float(episode.success) * efficiency)
    return float(np.mean(terms))
