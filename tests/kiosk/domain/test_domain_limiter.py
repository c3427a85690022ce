"""The code-entry limiter: back-off after 5 failures (30 s doubling to 900 s) and a daily budget."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kiosk.domain.errors import LockedOut, SiteLocked
from kiosk.domain.limiter import LimiterPolicy, LimiterState

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = LimiterPolicy()  # 5 failures, 30 s first, 900 s cap, 20 a day


def fail(state: LimiterState, now: datetime, times: int = 1) -> LimiterState:
    for _ in range(times):
        state, _locked = POLICY.on_failure(state, now)
    return state


def lock_seconds(state: LimiterState, now: datetime) -> float:
    assert state.locked_until is not None
    return (state.locked_until - now).total_seconds()


def test_four_failures_leave_entry_open_and_count_down():
    state = LimiterState()
    lefts = []
    for _ in range(4):
        state = fail(state, T0)
        POLICY.check(state, T0)
        lefts.append(POLICY.tries_left(state))
    assert lefts == [4, 3, 2, 1]
    assert state.locked_until is None


def test_fifth_failure_locks_for_30_seconds():
    state = fail(LimiterState(), T0, 5)
    assert lock_seconds(state, T0) == 30
    assert POLICY.tries_left(state) == 0
    with pytest.raises(LockedOut) as info:
        POLICY.check(state, T0)
    assert info.value.code == "locked_out" and info.value.details["retry_after"] == 30
    with pytest.raises(LockedOut) as info:
        POLICY.check(state, T0 + timedelta(seconds=29.5))
    assert info.value.details["retry_after"] == 1  # rounded up, never 0
    POLICY.check(state, T0 + timedelta(seconds=30))  # open again


def test_back_off_doubles_up_to_the_cap():
    now = T0
    state = fail(LimiterState(), now, 5)
    waits = [lock_seconds(state, now)]
    for _ in range(7):
        now = state.locked_until
        POLICY.check(state, now)
        state = fail(state, now)
        waits.append(lock_seconds(state, now))
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]


def test_success_resets_the_run_but_not_the_daily_count():
    state = fail(LimiterState(), T0, 5)
    state = POLICY.on_success(state)
    assert (state.consecutive, state.lockouts, state.locked_until) == (0, 0, None)
    assert state.day_failures == 5
    POLICY.check(state, T0)
    assert POLICY.tries_left(state) == 5
    state = fail(state, T0, 5)
    assert lock_seconds(state, T0) == 30  # the doubling starts over too
    assert state.day_failures == 10


def test_daily_budget_locks_the_site_and_says_so_once():
    state, now, locked_flags = LimiterState(), T0, []
    for _ in range(21):
        state, locked_now = POLICY.on_failure(state, now)
        locked_flags.append(locked_now)
        now += timedelta(minutes=1)  # same UTC day; on_failure counts, check() refuses
    assert locked_flags == [False] * 19 + [True, False]
    assert state.site_locked and state.day_failures == 21
    with pytest.raises(SiteLocked) as info:
        POLICY.check(state, now + timedelta(hours=6))
    assert info.value.code == "site_locked"


def test_site_lock_outlives_the_day_until_reset():
    state = fail(LimiterState(), T0, 20)
    with pytest.raises(SiteLocked):
        POLICY.check(state, T0 + timedelta(days=2))
    state = POLICY.reset(state)
    assert state == LimiterState(day=state.day)
    POLICY.check(state, T0)


def test_a_new_utc_day_resets_the_daily_count():
    state = fail(LimiterState(), T0, 19)
    assert state.day == "2026-11-24" and state.day_failures == 19
    midnight = datetime(2026, 11, 25, 0, 0, 1, tzinfo=UTC)
    state, locked_now = POLICY.on_failure(POLICY.on_success(state), midnight)
    assert (state.day, state.day_failures, state.site_locked, locked_now) == (
        "2026-11-25",
        1,
        False,
        False,
    )


def test_the_day_is_the_utc_day_whatever_offset_now_carries():
    # 01:00 at +02:00 on the 25th is still the 24th in UTC.
    local = datetime(2026, 11, 25, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    state = POLICY.on_failure(LimiterState(day="2026-11-24", day_failures=3), local)[0]
    assert (state.day, state.day_failures) == ("2026-11-24", 4)


def test_reset_reopens_entry_and_clears_todays_count():
    state = fail(LimiterState(), T0, 7)
    state = POLICY.reset(state)
    assert (state.consecutive, state.lockouts, state.locked_until) == (0, 0, None)
    assert (state.day_failures, state.site_locked) == (0, False)
    POLICY.check(state, T0)


def test_policy_values_are_honoured():
    strict = LimiterPolicy(max_failures=2, backoff_first_s=10, backoff_max_s=15, daily_budget=3)
    state, _ = strict.on_failure(LimiterState(), T0)
    state, _ = strict.on_failure(state, T0)
    assert lock_seconds(state, T0) == 10
    state, locked_now = strict.on_failure(state, T0 + timedelta(seconds=10))
    assert lock_seconds(state, T0 + timedelta(seconds=10)) == 15 and locked_now
