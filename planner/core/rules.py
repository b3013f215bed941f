"""The pure planning rules: engagement backoff and frequency caps.

Functions of data only (no clock, no I/O), so they can be read and tested without a database.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from planner.core.policy import BackoffTier, Cap


@dataclass(slots=True)  # one per occurrence: slotted, not frozen (see planner.core.checks)
class BackoffVerdict:
    send: bool
    tier: BackoffTier
    inactive_days: int
    days_since_last_send: int | None


def backoff_tier(tiers: Sequence[BackoffTier], inactive_days: int) -> BackoffTier:
    """The tier whose threshold is the highest one not above ``inactive_days``."""
    chosen = tiers[0]
    for tier in tiers:
        if inactive_days >= tier.min_inactive_days:
            chosen = tier
    return chosen


def engagement_backoff(
    tiers: Sequence[BackoffTier],
    occurrence_date: date,
    last_engaged_date: date,
    last_sent_date: date | None,
) -> BackoffVerdict:
    """Whether an occurrence on ``occurrence_date`` (a local date) is sent under the backoff policy.

    Inactivity counts local days since the last engagement (or the subscription's creation);
    the occurrence is sent when the local days since the subscription's last to-be-sent delivery
    reach the tier's interval, or when nothing was sent before. Backoff counts occurrence *days*:
    with several wall times a day, a day that already has a to-be-sent delivery (``since == 0``)
    sends its later wall times too, so a tier thins out whole days, never single sends of a day.
    """
    inactive = max(0, (occurrence_date - last_engaged_date).days)
    tier = backoff_tier(tiers, inactive)
    since = None if last_sent_date is None else (occurrence_date - last_sent_date).days
    return BackoffVerdict(
        send=since is None or since == 0 or since >= tier.interval_days,
        tier=tier,
        inactive_days=inactive,
        days_since_last_send=since,
    )


def cap_allows(existing: Sequence[datetime], at: datetime, cap: Cap) -> bool:
    """Whether one more delivery at ``at`` keeps every rolling window within the cap.

    ``existing`` are the instants (sorted) of deliveries already counted on that recipient and
    channel. A window is half-open, ``(end - window, end]``; adding ``at`` must not overfill the
    window ending at ``at`` nor any window ending at a later counted delivery that contains ``at``.
    """
    ends = [at] + [t for t in existing[bisect.bisect_right(existing, at) :] if t - cap.window < at]
    for end in ends:
        lo = bisect.bisect_right(existing, end - cap.window)
        hi = bisect.bisect_right(existing, end)
        if hi - lo + 1 > cap.amount:
            return False
    return True
