"""Provider throughput limits, shared by every worker through Redis (the ``limits`` library)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta

import redis
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter


class ProviderLimiter:
    """A moving-window limit per channel, e.g. ``{"email": "100/second", "sms": "10/second"}``."""

    def __init__(self, connection: redis.Redis, limits_by_channel: Mapping[str, str]) -> None:
        storage = RedisStorage(
            "redis://", connection_pool=connection.connection_pool, key_prefix="planner-rate"
        )
        self.limiter = MovingWindowRateLimiter(storage)
        self.items: dict[str, RateLimitItem] = {c: parse(text) for c, text in limits_by_channel.items()}

    def acquire(self, channel: str) -> bool:
        """Take one slot for ``channel``; False when the window is full."""
        item = self.items.get(channel)
        return item is None or self.limiter.hit(item, "provider", channel)

    def acquire_up_to(self, channel: str, wanted: int) -> int:
        """Take up to ``wanted`` slots for ``channel`` at once; returns how many were granted.

        One round trip for a whole batch when the window has room; otherwise slots are taken one by
        one until the window is full, so a batch never gets more than the limit allows.
        """
        item = self.items.get(channel)
        if item is None:
            return wanted
        if wanted <= 0:
            return 0
        if wanted <= item.amount and self.limiter.hit(item, "provider", channel, cost=wanted):
            return wanted
        granted = 0
        while granted < wanted and self.limiter.hit(item, "provider", channel):
            granted += 1
        return granted

    def retry_at(self, channel: str, now: datetime) -> datetime:
        """When the window should have room again (never sooner than a moment from now)."""
        item = self.items[channel]
        stats = self.limiter.get_window_stats(item, "provider", channel)
        wait = max(0.05, stats.reset_time - now.timestamp())
        return now + timedelta(seconds=min(wait, item.get_expiry()))


class Slots:
    """Provider rate-limit slots for one worker batch, taken from Redis in bulk as first needed.

    A slot taken for a delivery that then does not send (deferred, suppressed) is not given back:
    the limit errs on the side of sending less, never more.
    """

    def __init__(self, limiter: ProviderLimiter | None, remaining: Counter[str]) -> None:
        self.limiter = limiter
        #: Deliveries of the batch not yet past this point, per channel: how many slots to ask for.
        self.remaining = remaining
        self.held: Counter[str] = Counter()
        self.exhausted: set[str] = set()

    def take(self, channel: str) -> bool:
        if self.limiter is None:
            return True
        if not self.held[channel] and channel not in self.exhausted:
            self.held[channel] = self.limiter.acquire_up_to(channel, self.remaining[channel])
            if not self.held[channel]:
                self.exhausted.add(channel)
        if self.held[channel]:
            self.held[channel] -= 1
            return True
        return False
