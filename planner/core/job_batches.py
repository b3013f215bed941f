"""Which deliveries share an RQ job: one job per instant, channel and queue, at most a batch each.

Pure: the planner's chunks, ad-hoc notify and every reassignment give rows their job ids with these
functions, inside the transaction that writes them; :mod:`planner.dispatch.outbox` enqueues the jobs
after the commit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class JobBatch:
    """Deliveries due at the same instant on the same channel and queue, carried by one RQ job."""

    job_id: str
    queue: str
    channel: str
    scheduled_at: datetime
    delivery_ids: tuple[int, ...]


def new_job_id() -> str:
    # RQ job ids may only hold letters, digits, '_' and '-'.
    return f"dlv-{uuid.uuid4().hex}"


def assign_batches(items: Iterable[tuple[datetime, str, str, object]], batch_size: int) -> dict[object, str]:
    """Group items keyed (scheduled_at, channel, queue, key) into batches; returns key -> job id."""
    groups: dict[tuple[datetime, str, str], list[object]] = defaultdict(list)
    for scheduled_at, channel, queue, key in items:
        groups[(scheduled_at, channel, queue)].append(key)
    assignment: dict[object, str] = {}
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            job_id = new_job_id()
            for key in members[start : start + batch_size]:
                assignment[key] = job_id
    return assignment


def batches_from_rows(rows: Iterable[tuple[int, str | None, str, str, datetime]]) -> list[JobBatch]:
    """(id, job_id, queue, channel, scheduled_at) rows -> one JobBatch per job id."""
    grouped: dict[str, list[tuple[int, str, str, datetime]]] = defaultdict(list)
    for delivery_id, job_id, queue, channel, scheduled_at in rows:
        if job_id is None:
            continue
        grouped[job_id].append((delivery_id, queue, channel, scheduled_at))
    return [
        JobBatch(
            job_id=job_id,
            queue=members[0][1],
            channel=members[0][2],
            scheduled_at=min(m[3] for m in members),
            delivery_ids=tuple(sorted(m[0] for m in members)),
        )
        for job_id, members in grouped.items()
    ]
