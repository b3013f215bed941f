"""The service at a glance: deliveries by status, RQ queues and workers, and how late the planner is.

Shared by ``planner status``, ``GET /readyz`` and the metrics. Reads only; every number comes from
the database or Redis at the moment of the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from rq import Queue, Worker
from rq.registry import ScheduledJobRegistry

from planner.app import App
from planner.clock import format_duration
from planner.core.status import DeliveryStatus
from planner.core.wording import duration, window_length
from planner.readmodels.webhooks import status_section
from planner.settings import QUEUES
from planner.store import partition_copy, partitions, reports, retention
from planner.store.models import OPEN_STATUSES
from planner.store.pauses import ADAPTER_CONFIG
from planner.store.queries import (
    last_runs,
    oldest_due_delivery,
    oldest_overdue_cursor,
    pause_list,
    run_dict,
)

#: The planner runs hourly; a readiness probe tolerates one missed hour before calling it late.
RUN_STALENESS = timedelta(hours=2)


@dataclass(frozen=True)
class QueueState:
    depth: dict[str, int]
    scheduled: dict[str, int]
    workers: list[str]


def queue_state(connection: redis.Redis) -> QueueState:
    depth: dict[str, int] = {}
    scheduled: dict[str, int] = {}
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        depth[name] = int(queue.count)
        registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        scheduled[name] = int(registry.get_job_count(cleanup=False))
    return QueueState(depth=depth, scheduled=scheduled, workers=live_workers(connection))


def live_workers(connection: redis.Redis) -> list[str]:
    """Registered RQ workers whose heartbeat key has not expired.

    A worker killed without a goodbye stays in RQ's set of workers until someone cleans it, but
    its own key expires shortly after its last heartbeat; only those keys count as alive.
    """
    keys = sorted(Worker.all_keys(connection=connection))
    if not keys:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.exists(key)
        alive = pipe.execute()
    return [key for key, present in zip(keys, alive, strict=True) if present]


@dataclass(frozen=True)
class PlannerLateness:
    last_run: dict[str, Any] | None
    last_success: dict[str, Any] | None
    since_last_success: timedelta | None
    oldest_overdue_cursor: datetime | None
    overdue_by: timedelta | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_run": self.last_run,
            "last_successful_run": self.last_success,
            "seconds_since_last_successful_run": _seconds(self.since_last_success),
            "oldest_overdue_cursor": self.oldest_overdue_cursor.isoformat()
            if self.oldest_overdue_cursor
            else None,
            "overdue_seconds": _seconds(self.overdue_by),
        }


def _seconds(value: timedelta | None) -> float | None:
    return round(value.total_seconds(), 3) if value is not None else None


def planner_lateness(app: App, now: datetime) -> PlannerLateness:
    with app.sessions() as session:
        latest, success = last_runs(session)
        oldest = oldest_overdue_cursor(session, now)
    return PlannerLateness(
        last_run=run_dict(latest),
        last_success=run_dict(success),
        since_last_success=now - success.started_at if success is not None else None,
        oldest_overdue_cursor=oldest,
        overdue_by=now - oldest if oldest is not None else None,
    )


def planner_problems(lateness: PlannerLateness, max_lateness: timedelta) -> list[str]:
    """Why the planner counts as late (empty when it is on time)."""
    problems = []
    if lateness.since_last_success is None:
        problems.append("no successful planner run yet")
    elif lateness.since_last_success > RUN_STALENESS:
        problems.append(
            f"last successful planner run was {duration(lateness.since_last_success)} ago "
            f"(over {duration(RUN_STALENESS)})"
        )
    if lateness.overdue_by is not None and lateness.overdue_by > max_lateness:
        overdue, limit = duration(lateness.overdue_by), duration(max_lateness)
        problems.append(f"a subscription cursor is overdue by {overdue} (over {limit})")
    return problems


@dataclass(frozen=True)
class DeliveryWait:
    """How long the oldest due delivery has waited for a worker (None: none is waiting)."""

    oldest_due: datetime | None
    waited: timedelta | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "oldest_due_delivery": self.oldest_due.isoformat() if self.oldest_due else None,
            "waited_seconds": _seconds(self.waited),
        }


def delivery_wait(app: App, now: datetime) -> DeliveryWait:
    with app.sessions() as session:
        oldest = oldest_due_delivery(session, now)
    return DeliveryWait(oldest_due=oldest, waited=now - oldest if oldest is not None else None)


def delivery_problems(wait: DeliveryWait, max_wait: timedelta) -> list[str]:
    """Why deliveries count as stuck: one due longer than ``max_wait`` that no worker took (no
    worker serves its queue, the workers are behind, or its job was lost and not yet repaired)."""
    if wait.waited is None or wait.waited <= max_wait:
        return []
    return [f"a due delivery has waited {duration(wait.waited)} for a worker (over {duration(max_wait)})"]


def adapter_config_problems(app: App) -> list[str]:
    """Channels a worker paused because the provider refused the adapter's settings, with why."""
    with app.sessions() as session:
        paused = pause_list(session)
    return [
        f"{p['value']} paused ({ADAPTER_CONFIG}): {p['detail'] or 'no detail'}; "
        f"fix the adapter settings, then run `planner resume {p['value']}`"
        for p in paused
        if p["reason"] == ADAPTER_CONFIG
    ]


#: Settled deliveries are counted over the last day only: all-time totals read the whole history.
RECENT = timedelta(hours=24)
#: The final statuses: the retention's to keep or prune, counted over ``RECENT`` only.
SETTLED_STATUSES = tuple(s.value for s in DeliveryStatus if s.value not in OPEN_STATUSES)
#: Dead letters are counted over the dead-letter page's default window: they are kept until an
#: operator acts or the retention prunes them, and counting every one kept on each refresh and
#: scrape would read them all.
DEAD_RECENT = timedelta(days=7)
#: Statuses still on their way, counted whole (each a short range of the open-status index).
IN_FLIGHT = tuple(status for status in OPEN_STATUSES if status != DeliveryStatus.dead.value)


#: The windows in words, for every label that names them (the overview, ``planner status``, metrics).
SETTLED_WINDOW, DEAD_WINDOW = window_length(RECENT), window_length(DEAD_RECENT)
#: What the status counts hold, in one sentence.
COUNTED = f"in flight, dead ones due in the last {DEAD_WINDOW}, settled ones due in the last {SETTLED_WINDOW}"


def count_windows(now: datetime) -> list[reports.CountWindow]:
    """Which deliveries the status counts read: in flight all, dead ones due since ``now -
    DEAD_RECENT``, settled ones since ``now - RECENT``."""
    dead = (DeliveryStatus.dead.value,)
    return [(IN_FLIGHT, None), (dead, now - DEAD_RECENT), (SETTLED_STATUSES, now - RECENT)]


def recent_counts(session: Any, now: datetime) -> dict[str, int]:
    """Deliveries per status (:func:`count_windows`), those with none left out."""
    counts = reports.delivery_counts(session, count_windows(now))
    return {status: n for status, n in counts.items() if n}


def at_a_glance(app: App, now: datetime) -> dict[str, Any]:
    """What ``planner status`` and the dashboard's overview both show: the status counts
    (:func:`count_windows`; the windows' starts as instants), queues, workers, pauses, how late the
    planner is and the oldest due delivery waiting."""
    with app.sessions() as session:
        counts = recent_counts(session, now)
        paused = pause_list(session)
    queues = queue_state(app.redis)
    lateness = planner_lateness(app, now)
    wait = delivery_wait(app, now)
    return {
        "deliveries": dict(sorted(counts.items())),
        "settled_since": now - RECENT,
        "dead_since": now - DEAD_RECENT,
        "dead": counts.get("dead", 0),
        "queues": {
            name: {"depth": queues.depth[name], "scheduled": queues.scheduled[name]} for name in QUEUES
        },
        "scheduled_jobs": sum(queues.scheduled.values()),
        "paused": paused,
        "workers": {"count": len(queues.workers), "keys": queues.workers},
        "planner": {**lateness.as_dict(), "late": planner_problems(lateness, app.settings.max_lateness)},
        "waiting": {**wait.as_dict(), "stuck": delivery_problems(wait, app.settings.max_delivery_wait)},
    }


def collect_status(app: App, now: datetime) -> dict[str, Any]:
    """``planner status`` and ``GET /v1/status``: :func:`at_a_glance`, the webhooks and the retention."""
    found = at_a_glance(app, now)
    for since in ("settled_since", "dead_since"):
        found[since] = found[since].isoformat()
    webhooks, retention = status_section(app, now), retention_state(app)
    return {"now": now.isoformat(), **found, "webhooks": webhooks, "retention": retention}


#: maintenance_state rows that are not counts of removed rows.
_NOT_REMOVED = ("retention_pass", "engagement_sweep", "partition_copy:")


def retention_state(app: App) -> dict[str, Any]:
    """The retention at a glance: its last pass, what it removed so far per kind, and on PostgreSQL
    the months the delivery table has (and whether its move to partitions is under way)."""
    with app.sessions() as session:
        totals = retention.totals(session)
        last = retention.last_pass(session)
        state = partition_copy.state(session)
        months = partitions.existing_months(session) if state == "partitioned" else []
    removed = {name: rows for name, (rows, _) in sorted(totals.items()) if not name.startswith(_NOT_REMOVED)}
    return {
        "last_pass": last.isoformat() if last else None,
        "removed": removed,
        "delivery_retention": format_duration(app.settings.delivery_retention),
        "partitions": {
            "state": state,
            "months": len(months),
            "first": months[0].isoformat()[:7] if months else None,
            "last": months[-1].isoformat()[:7] if months else None,
        },
    }
