"""The link's reconnect back-off: exponential, capped, jittered over the upper half."""

from __future__ import annotations

import random

import pytest

from kiosk.cloud.link import LinkTiming, backoff_s

TIMING = LinkTiming(backoff_first_s=1.0, backoff_max_s=120.0)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (7, 64.0), (8, 120.0), (50, 120.0)],
)
def test_the_ceiling_doubles_per_attempt_up_to_the_cap(attempt, ceiling):
    assert backoff_s(attempt, TIMING, rnd=lambda: 0.0) == ceiling / 2
    assert backoff_s(attempt, TIMING, rnd=lambda: 1.0) == ceiling


def test_jitter_spreads_a_fleet_over_the_upper_half():
    """A thousand banks losing one broker at once must not all come back in one instant."""
    rnd = random.Random(7).random
    waits = [backoff_s(5, TIMING, rnd=rnd) for _ in range(1000)]
    assert min(waits) >= 8.0 and max(waits) <= 16.0
    assert len({round(w, 3) for w in waits}) > 900  # spread, not a handful of values
    low_half = sum(1 for w in waits if w < 12.0)
    assert 400 < low_half < 600  # uniform over [8, 16]
