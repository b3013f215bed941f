"""The outbox's reconciler: pending deliveries whose RQ job Redis lost are enqueued again.

Run at the start of every planner run and in every worker's maintenance pass. It asks the database for
the job ids of pending deliveries and Redis which of them it still holds where their status says
(:func:`lost_jobs`); only the rows of lost jobs are read back and enqueued again, under the same
job id. Sending stays exactly-once whatever RQ does,
because a delivery is claimed in the database before any provider call.

Only what changed since the last pass is checked, so a pass costs what changed, not the backlog: the
instant up to which every pending row was found in Redis (the watermark) is kept *in Redis itself*.
A Redis that restarts empty (or is flushed) loses its jobs and the watermark together, so the next
pass checks every pending row; a Redis restored from an older snapshot brings back an older
watermark with the jobs of that time. Rows are stamped (``updated_at``) before their transaction
commits, so each pass looks back :data:`OVERLAP` before the watermark for rows that committed late.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from planner.core.job_batches import batches_from_rows
from planner.core.status import DeliveryStatus
from planner.dispatch.outbox import enqueue_batches, mark_queued
from planner.dispatch.reassign import requeue
from planner.store.db import SessionFactory
from planner.store.reconcile import jobless_pending_ids, pending_jobs, pending_rows_of_jobs

#: Where the watermark lives (an ISO-8601 instant); see the module's docstring.
WATERMARK_KEY = "planner:reconcile:checked-through"
#: How long after its ``updated_at`` stamp a pending row's transaction may still commit.
OVERLAP = timedelta(minutes=10)
#: Present while a full pass is not due: once a day (Redis time) every pending row is checked, so
#: a job lost some other way (a key deleted by hand) is repaired within a day. Only the workers'
#: maintenance pass takes it (``daily_full_pass=True``): it reads every pending row (0.3-0.5 s at
#: 500,000), and the hourly planner run, whose own crash window the watermark covers, should cost
#: what changed.
FULL_PASS_KEY = "planner:reconcile:full-pass-done"
FULL_PASS_EVERY = timedelta(days=1)

# For each job (KEYS in fours: its hash, its queue, the queue's in-flight list, its schedule; ARGV in
# pairs: job id, queue name): 1 when Redis still holds the job where its status says it is, else 0.
_FOUND_EACH = """
local members = {}
local function holds(list, id)
  -- Each list read once per call, as a set: one LPOS per job would cost the list's length per job.
  local set = members[list]
  if not set then
    set = {}
    for _, member in ipairs(redis.call('LRANGE', list, 0, -1)) do set[member] = true end
    members[list] = set
  end
  return set[id] == true
end
local found = {}
for i = 1, #ARGV / 2 do
  local id, queue = ARGV[2 * i - 1], ARGV[2 * i]
  local job, list, in_flight, schedule = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local state = redis.call('HMGET', job, 'status', 'origin')
  local status, origin = state[1], state[2]
  local present = 1
  if not status then
    present = 0
  elseif origin == queue and status == 'queued' then
    if not holds(list, id) and not holds(in_flight, id) then present = 0 end
  elseif origin == queue and status == 'scheduled' then
    if not redis.call('ZSCORE', schedule, id) then present = 0 end
  end
  found[i] = present
end
return found
"""


def lost_jobs(connection: redis.Redis, jobs: Sequence[tuple[str, str]], chunk: int = 1000) -> set[str]:
    """Which of these (job id, queue) jobs Redis no longer holds: no job hash (never enqueued, or
    Redis lost it), or a hash that says ``queued`` (``scheduled``) while the job is on neither its
    queue nor the list of jobs being taken from it (not in its schedule).

    The second kind is a job popped by a client that died before reading it: Redis removes the job
    from the queue as it answers a blocked ``BLPOP``, so a worker killed while its socket stays open
    (or cut off by the network) takes the job with it. A job a live worker has just popped and not
    yet marked started looks the same for a moment; enqueueing it again only adds a job that finds
    its deliveries claimed.
    """
    if not jobs:
        return set()
    # Imported here: rq costs about 40 ms of start-up, and a run with nothing due checks no job.
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    found_each = connection.register_script(_FOUND_EACH)
    places: dict[str, list[str]] = {}
    gone: set[str] = set()
    for start in range(0, len(jobs), chunk):
        part = jobs[start : start + chunk]
        keys: list[str] = []
        args: list[str] = []
        for job_id, queue in part:
            place = places.get(queue)
            if place is None:
                rq_queue = Queue(queue, connection=connection)
                schedule = ScheduledJobRegistry(queue, connection=connection).key  # type: ignore[no-untyped-call]
                place = places[queue] = [rq_queue.key, rq_queue.intermediate_queue_key, schedule]
            keys += [f"rq:job:{job_id}", *place]
            args += [job_id, queue]
        answers = found_each(keys=keys, args=args)
        gone.update(job_id for (job_id, _), present in zip(part, answers, strict=True) if not present)
    return gone


@dataclass
class ReconcileReport:
    checked: int = 0
    reenqueued: int = 0
    jobs: int = 0


def reconcile(
    factory: SessionFactory,
    connection: redis.Redis,
    now: datetime,
    *,
    grace: timedelta = timedelta(seconds=0),
    chunk_size: int = 2000,
    overlap: timedelta = OVERLAP,
    daily_full_pass: bool = False,
) -> ReconcileReport:
    """Re-enqueue every pending delivery whose RQ job is missing from Redis.

    Asks the database for the distinct job ids of ``planned``/``queued`` deliveries and Redis which
    of them exist; only the rows of missing jobs are read back and enqueued again, under the same
    job id. ``grace`` leaves alone rows touched in the last moments (a concurrent run may be between
    its commit and its enqueue); re-enqueueing them would never send twice, only add a no-op job.
    Rows stamped before the watermark (less ``overlap``) are not read at all; ``daily_full_pass``
    (the workers' maintenance) also checks every pending row once a day (:data:`FULL_PASS_KEY`).
    """
    try:
        return _reconcile(factory, connection, now, grace, chunk_size, overlap, daily_full_pass)
    except BaseException:
        if daily_full_pass:
            with contextlib.suppress(redis.RedisError):
                connection.delete(FULL_PASS_KEY)  # the full pass (if it was one) is still due
        raise


def _reconcile(
    factory: SessionFactory,
    connection: redis.Redis,
    now: datetime,
    grace: timedelta,
    chunk_size: int,
    overlap: timedelta,
    daily_full_pass: bool,
) -> ReconcileReport:
    report = ReconcileReport()
    upper = now - grace
    after = _checked_after(connection, upper, overlap, daily_full_pass)
    with factory() as session:
        jobs = pending_jobs(session, upper, after)
    report.checked = len(jobs)
    gone = sorted(lost_jobs(connection, [(job_id, queue) for job_id, queue in jobs if job_id is not None]))
    for start in range(0, len(gone), chunk_size):
        _enqueue_again(factory, connection, gone[start : start + chunk_size], now, report)
    if any(job_id is None for job_id, _ in jobs):
        with factory() as session:
            ids = jobless_pending_ids(session, upper, after)
        requeued = requeue(
            factory,
            connection,
            ids,
            now,
            event="reconciled",
            from_statuses=[DeliveryStatus.planned, DeliveryStatus.queued],
        )
        report.reenqueued += len(requeued)
    # Every pending row stamped up to ``upper`` now has its job in Redis.
    connection.set(WATERMARK_KEY, upper.isoformat())
    return report


def _checked_after(
    connection: redis.Redis, upper: datetime, overlap: timedelta, daily_full_pass: bool
) -> datetime | None:
    """The stamp after which pending rows are checked: the watermark less ``overlap``. None (check
    every pending row) without a watermark (a new or emptied Redis), when the clock went back, or
    when this pass takes the day's full pass."""
    mark = read_watermark(connection)
    full_pass = daily_full_pass and bool(connection.set(FULL_PASS_KEY, "1", nx=True, ex=FULL_PASS_EVERY))
    if mark is not None and mark <= upper and not full_pass:
        return mark - overlap
    return None


def _enqueue_again(
    factory: SessionFactory,
    connection: redis.Redis,
    job_ids: list[str],
    now: datetime,
    report: ReconcileReport,
) -> None:
    """Enqueue these lost jobs again, under the same ids, with the pending rows they carry."""
    with factory() as session:
        rows = pending_rows_of_jobs(session, job_ids)
    lost = batches_from_rows(rows)
    enqueue_batches(connection, lost, now)
    with factory() as session, session.begin():
        mark_queued(session, lost, now)
    report.jobs += len(lost)
    report.reenqueued += sum(len(b.delivery_ids) for b in lost)


def read_watermark(connection: redis.Redis) -> datetime | None:
    raw = connection.get(WATERMARK_KEY)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None  # unreadable: check everything, then write a good one
