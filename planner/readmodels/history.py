"""Throughput and latency history: deliveries sent per minute (or per 5 or 15 minutes over longer
windows) by channel, and the time from due to sent of those sends, for the dashboard's charts.

"Due" is the delivery's ``scheduled_at``: when it was to go out after the planner's rules (a
quiet-hours deferral moves it on purpose, and so does a retry, due again at its attempt's time); the
wait for a worker and for the rate limit count. One grouped query, whatever the number of sends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from planner.errors import InvalidInput
from planner.store.db import Session
from planner.store.reports import sent_per_bucket

#: The windows offered (hours), each with its bucket (seconds): about 60 to 100 bars a chart.
WINDOWS = {1: 60, 6: 300, 24: 900}


@dataclass
class SendBucket:
    start: datetime
    sent: Counter[str] = field(default_factory=Counter)  # per channel
    mean_seconds: float | None = None  # due to sent, over every channel
    max_seconds: float | None = None


@dataclass(frozen=True)
class SendHistory:
    hours: int
    bucket_seconds: int
    buckets: list[SendBucket]

    @property
    def total(self) -> int:
        return sum(sum(b.sent.values()) for b in self.buckets)

    @property
    def longest(self) -> float | None:
        values = [b.max_seconds for b in self.buckets if b.max_seconds is not None]
        return max(values) if values else None


def send_history(session: Session, now: datetime, hours: int = 1) -> SendHistory:
    """The last ``hours`` (1, 6 or 24) up to ``now``'s bucket, oldest bucket first."""
    if hours not in WINDOWS:
        raise InvalidInput("hours", hours, f"one of {', '.join(map(str, WINDOWS))}")
    size = WINDOWS[hours]
    # Buckets on whole multiples of their size (whole minutes, quarter hours), the last holding now.
    end = datetime.fromtimestamp((now.timestamp() // size + 1) * size, now.tzinfo)
    since = end - timedelta(hours=hours)
    buckets = [SendBucket(since + timedelta(seconds=i * size)) for i in range(hours * 3600 // size)]
    totals: Counter[int] = Counter()
    for row in sent_per_bucket(session, since, end, size):
        if not 0 <= row.bucket < len(buckets):
            continue  # a rounding at the edge
        bucket = buckets[row.bucket]
        bucket.sent[row.channel] += row.sent
        weighted = (bucket.mean_seconds or 0.0) * totals[row.bucket] + row.mean_seconds * row.sent
        totals[row.bucket] += row.sent
        bucket.mean_seconds = weighted / totals[row.bucket]
        bucket.max_seconds = max(bucket.max_seconds or 0.0, row.max_seconds)
    return SendHistory(hours, size, buckets)
