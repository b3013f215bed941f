"""Which deliveries share an RQ job: one job per instant, channel and queue, at most a batch each
(within a chunk, or within a planner run for sends after its window: :class:`RunJobs`).

Pure: the planner's chunks, ad-hoc notify and every reassignment give rows their job ids with these
functions, inside the transaction that writes them; :mod:`planner.dispatch.outbox` enqueues the jobs
after the commit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
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


class RunJobs:
    """The jobs of one planner run, shared by its chunks so that a later send instant gets as few
    jobs as its deliveries need, not one or more per chunk.

    A send instant after ``hold_after`` (the run's window end) is far enough ahead to wait for the
    run's last chunk: every chunk's deliveries for that instant, channel and queue join the same
    jobs (up to ``batch_size`` each), and those jobs are enqueued once, when the run ends
    (:meth:`release`). Sends due sooner get their chunk's own jobs, enqueued after its commit. The
    rows carry their job ids from their first commit, so a run that dies before its end leaves them
    to the reconcile, as any commit not followed by its enqueue. Not thread-safe: the chunks' threads
    share one under a lock.
    """

    def __init__(self, batch_size: int, hold_after: datetime) -> None:
        self.batch_size = batch_size
        self.hold_after = hold_after
        self._open: dict[tuple[datetime, str, str], tuple[str, int]] = {}  # job id, room left
        self._held: dict[str, JobBatch] = {}

    def assign(self, items: Iterable[tuple[datetime, str, str, object]]) -> dict[object, str]:
        """Like :func:`assign_batches`; a later instant's items join the run's open job for it."""
        sooner: list[tuple[datetime, str, str, object]] = []
        assignment: dict[object, str] = {}
        for item in items:
            scheduled_at, channel, queue, key = item
            if scheduled_at <= self.hold_after:
                sooner.append(item)
                continue
            group = (scheduled_at, channel, queue)
            job_id, room = self._open.get(group, ("", 0))
            if not room:
                job_id, room = new_job_id(), self.batch_size
            assignment[key] = job_id
            self._open[group] = (job_id, room - 1)
        assignment.update(assign_batches(sooner, self.batch_size))
        return assignment

    def hold(self, batches: Sequence[JobBatch]) -> list[JobBatch]:
        """These committed batches less those of later instants, which are kept for :meth:`release`
        (joined with the other chunks' rows of the same job)."""
        now: list[JobBatch] = []
        for batch in batches:
            if batch.scheduled_at <= self.hold_after:
                now.append(batch)
                continue
            held = self._held.get(batch.job_id)
            if held is not None:
                batch = replace(held, delivery_ids=tuple(sorted(held.delivery_ids + batch.delivery_ids)))
            self._held[batch.job_id] = batch
        return now

    def release(self) -> list[JobBatch]:
        """Every held job, to enqueue now; the run's open jobs are closed."""
        released = list(self._held.values())
        self._held, self._open = {}, {}
        return released


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
