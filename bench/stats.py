"""Summaries of timing samples: nearest-rank percentiles, in the unit the caller asks for."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(ordered: Sequence[int], p: float) -> int:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summarise(samples_ns: Sequence[int], unit_ns: int) -> dict[str, Any]:
    """n, p50, p99, max and mean of samples given in ns, expressed in units of `unit_ns` ns."""
    ordered = sorted(samples_ns)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50) / unit_ns,
        "p99": percentile(ordered, 99) / unit_ns,
        "max": ordered[-1] / unit_ns,
        "mean": sum(ordered) / len(ordered) / unit_ns,
    }


US = 1_000
MS = 1_000_000
