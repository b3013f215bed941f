"""A worker batch's lease on the deliveries it claimed, kept alive by the batch's own loop.

The lease is renewed whenever a third of it has passed, checked before every provider call, and a
call is only started with at least the adapter's deadline (plus the clock skew between hosts) left. So
a live worker's deliveries never expire while it sends them, whatever the provider's latency (the
deadline bounds each call), and a dead or frozen worker's deliveries come back within one lease.
Each renewal is conditional on the batch's claim token: a delivery that was recovered meanwhile is
not the batch's any more, and :meth:`BatchLease.keep` says so before anything is sent for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from planner.store.batch_connection import BatchConnection
from planner.store.claims import extend_lease

log = structlog.get_logger("planner.delivery")


class BatchLease:
    """The batch's claim token, the deliveries it still holds, and how long it holds them."""

    def __init__(
        self,
        db: BatchConnection,
        token: str,
        ids: Sequence[int],
        length: timedelta,
        until: datetime,
        clock: Callable[[], datetime],
        skew: timedelta,
    ) -> None:
        self.db = db
        self.token = token
        self.length = length
        self.clock = clock
        #: How far two hosts' clocks may disagree: a call never starts with less than its deadline plus this.
        self.skew = skew
        #: The deliveries still ``sending`` under the token, as the claim or the last renewal found them.
        self.held = set(ids)
        #: The lease as the claim or the last renewal wrote it.
        self.until = until

    def keep(self, delivery_id: int, need: timedelta) -> bool:
        """Whether the batch still holds ``delivery_id`` for at least ``need`` (plus the clock skew),
        renewing the lease first when a third of it has passed or less than that is left."""
        now = self.clock()
        if now >= self.until - self.length * 2 / 3 or self.until - now < need + self.skew:
            self.renew(now)
        return delivery_id in self.held and self.until - self.clock() >= need + self.skew

    def renew(self, now: datetime) -> None:
        """Extend the lease of the deliveries still held; those recovered meanwhile are let go."""
        until = now + self.length
        kept = extend_lease(self.db.engine, sorted(self.held), self.token, until)
        if kept is None:
            return  # not renewed: the batch goes on only while the lease it has is long enough
        if len(kept) < len(self.held):
            log.warning(
                "lease ran out; deliveries another worker took are left to it",
                taken_over=len(self.held) - len(kept),
                lease=str(self.length),
            )
        self.held, self.until = kept, until
