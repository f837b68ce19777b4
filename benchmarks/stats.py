"""Small statistics for benchmark results: percentiles, rates and ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "rate", "ratio"]


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """The `fraction` (0..1) percentile by linear interpolation; None without samples."""
    if not samples:
        return None
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    ordered = sorted(samples)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    weight = position - low
    return ordered[low] * (1 - weight) + ordered[high] * weight


def rate(count: float, seconds: float) -> float | None:
    """`count` per second, or None when nothing was timed."""
    if seconds <= 0:
        return None
    return count / seconds


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """ours / baseline, or None when either is missing or the baseline is zero."""
    if ours is None or baseline is None or baseline == 0:
        return None
    return ours / baseline
