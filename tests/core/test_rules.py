"""The pure rules: backoff tiers, rolling-window caps, retry decisions. No database, no clock."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.core.policy import DEFAULT_BACKOFF_TIERS, BackoffTier, Cap
from planner.core.retry import RetryPolicy, decide_retry
from planner.core.rules import backoff_tier, cap_allows, engagement_backoff

TIERS = tuple(BackoffTier(a, b) for a, b in DEFAULT_BACKOFF_TIERS)
DAY = date(2026, 3, 1)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("inactive", "interval"),
    [(0, 1), (2, 1), (3, 2), (6, 2), (7, 3), (13, 3), (14, 7), (29, 7), (30, 14), (400, 14)],
)
def test_tier_boundaries_follow_the_policy(inactive: int, interval: int) -> None:
    assert backoff_tier(TIERS, inactive).interval_days == interval


def test_backoff_sends_when_the_interval_is_reached() -> None:
    engaged = DAY - timedelta(days=10)  # tier 7-13: every 3rd day
    assert engagement_backoff(TIERS, DAY, engaged, DAY - timedelta(days=2)).send is False
    assert engagement_backoff(TIERS, DAY, engaged, DAY - timedelta(days=3)).send is True
    first = engagement_backoff(TIERS, DAY, engaged, None)
    assert first.send is True and first.days_since_last_send is None


def test_fresh_engagement_lifts_the_backoff() -> None:
    yesterday = DAY - timedelta(days=1)
    verdict = engagement_backoff(TIERS, DAY, DAY, yesterday)
    assert verdict.send and verdict.inactive_days == 0 and verdict.tier.interval_days == 1


THREE_A_DAY = Cap(amount=3, window=timedelta(days=1), text="3/day")


def test_cap_counts_the_rolling_window_ending_at_the_instant() -> None:
    sent = [T0 - timedelta(hours=23), T0 - timedelta(hours=10), T0 - timedelta(hours=1)]
    assert cap_allows(sent, T0, THREE_A_DAY) is False
    # The oldest falls out of the window one moment after 24 h.
    assert cap_allows(sent, T0 + timedelta(hours=1), THREE_A_DAY) is True


def test_cap_protects_windows_of_later_deliveries_too() -> None:
    # Two sends already planned later today: a third earlier one would overfill their window.
    later = [T0 + timedelta(hours=2), T0 + timedelta(hours=5)]
    assert cap_allows(later, T0, Cap(amount=2, window=timedelta(days=1), text="2/day")) is False
    assert cap_allows(later, T0, THREE_A_DAY) is True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=72 * 60), max_size=30), st.integers(1, 5))
def test_admitting_greedily_never_overfills_any_window(minutes: list[int], amount: int) -> None:
    cap = Cap(amount=amount, window=timedelta(hours=24), text=f"{amount}/day")
    admitted: list[datetime] = []
    for m in sorted(minutes):
        at = T0 + timedelta(minutes=m)
        if cap_allows(admitted, at, cap):
            admitted.append(at)
    for end in admitted:
        inside = [t for t in admitted if end - cap.window < t <= end]
        assert len(inside) <= amount


def test_retry_decisions() -> None:
    policy = RetryPolicy(max_attempts=3, base=timedelta(seconds=10), cap=timedelta(seconds=60))
    rng = random.Random(1)
    first = decide_retry(policy, 1, permanent=False, retry_after=None, rng=rng)
    assert first.delay is not None and timedelta(seconds=5) <= first.delay <= timedelta(seconds=10)
    honoured = decide_retry(policy, 1, permanent=False, retry_after=45, rng=rng)
    assert honoured.delay is not None and honoured.delay >= timedelta(seconds=45)
    capped = decide_retry(policy, 2, permanent=False, retry_after=3600, rng=rng)
    assert capped.delay == timedelta(seconds=60)
    assert decide_retry(policy, 3, permanent=False, retry_after=None, rng=rng).reason == "attempts_exhausted"
    assert decide_retry(policy, 1, permanent=True, retry_after=None, rng=rng).reason == "permanent_failure"
