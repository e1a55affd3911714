"""The loss curve of a run: its moving mean, the steps to a target, the plateau at the baseline.

- moving mean: m_s = the mean of the finite losses among the ``window`` steps ending at s;
- steps to a target loss: the first step s with m_s <= target (slow convergence, measured);
- plateau length: the number of steps whose smoothed loss lies within 5 % of the
  memoryless baseline b, |m_s - b| <= 0.05 b.

Plain functions of a sequence of losses: they read no database (``history`` does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bptt.checks import positive_int

DEFAULT_WINDOW = 20
PLATEAU_TOLERANCE = 0.05


def moving_mean(values: Sequence[float | None], window: int = DEFAULT_WINDOW) -> list[float]:
    """m_s = mean of the finite values among the ``window`` entries ending at s (NaN when there are none)."""
    window = positive_int("window", window)
    means = []
    for end in range(1, len(values) + 1):
        finite = [v for v in values[max(0, end - window) : end] if v is not None and math.isfinite(v)]
        means.append(sum(finite) / len(finite) if finite else math.nan)
    return means


def steps_to_target(losses: Sequence[float | None], target: float, window: int = DEFAULT_WINDOW) -> int | None:
    """The first step s (1-based) with m_s <= target, m the moving mean of the loss; None if never.

    Slow convergence, measured: the more steps, the slower.
    """
    for step, mean in enumerate(moving_mean(losses, window), start=1):
        if mean <= target:
            return step
    return None


def plateau_length(
    losses: Sequence[float | None], baseline: float, tolerance: float = PLATEAU_TOLERANCE, window: int = DEFAULT_WINDOW
) -> int:
    """The number of steps s with |m_s - b| <= tolerance * b: steps spent at the memoryless baseline b."""
    if not baseline > 0:
        raise ValueError(f"baseline must be positive, got {baseline!r}")
    return sum(1 for m in moving_mean(losses, window) if abs(m - baseline) <= tolerance * baseline)
