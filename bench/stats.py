"""Summaries of repeated timings: median, p95, min, max, mean, and ratios of medians."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """Timings in milliseconds (or any one unit) over ``n`` trials."""

    n: int
    median: float
    p95: float
    min: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            n=len(values),
            median=statistics.median(values),
            p95=percentile(values, 95),
            min=min(values),
            max=max(values),
            mean=statistics.fmean(values),
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def text(self, unit: str = "ms") -> str:
        return f"p50 {self.median:.1f} {unit}, p95 {self.p95:.1f} {unit} (n={self.n})"


def ratio(service: float, raw: float) -> float:
    return service / raw if raw > 0 else math.inf


def overhead_pct(service: float, raw: float) -> float:
    return 100.0 * (ratio(service, raw) - 1.0)
