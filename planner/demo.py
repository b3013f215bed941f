"""``planner demo``: the whole service on the embedded default, over two simulated days.

From an empty directory it creates the SQLite database, starts an embedded real Redis, imports the
sample fixtures, then advances a simulated clock hour by hour across the 2026-03-08 daylight-saving
change in North America: the planner runs at every top of the hour and an in-process RQ worker
sends each due delivery at its simulated instant through the ``file`` adapter. Everything it
started is stopped before it returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from adapters.file import FileAdapter
from planner.localtime import to_local
from planner.models import Delivery, DeliveryEvent, Recipient

DEMO_START = datetime(2026, 3, 7, 0, 0, tzinfo=UTC)
DEMO_HOURS = 48
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample.jsonl"


@dataclass
class DemoSummary:
    directory: Path
    start: datetime
    end: datetime
    recipients: int = 0
    planner_runs: int = 0
    deliveries: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    deferred_by_quiet_hours: int = 0
    skipped_by_backoff: int = 0
    suppressed_by_caps: int = 0
    dst_examples: list[dict[str, str]] = field(default_factory=list)
    outbox: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "simulated_from": self.start.isoformat(),
            "simulated_to": self.end.isoformat(),
            "recipients": self.recipients,
            "planner_runs": self.planner_runs,
            "deliveries": self.deliveries,
            "sent_by_channel": dict(sorted(self.sent.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "deferred_by_quiet_hours": self.deferred_by_quiet_hours,
            "skipped_by_backoff": self.skipped_by_backoff,
            "suppressed_by_caps": self.suppressed_by_caps,
            "dst_adjustments": self.dst_examples,
            "outbox": self.outbox,
        }


def run_demo(
    directory: Path,
    fixtures: Path = SAMPLE,
    *,
    start: datetime = DEMO_START,
    hours: int = DEMO_HOURS,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    # The kit is the demo's engine: a simulated clock that runs the hourly planner and the worker.
    from planner.testing.clock import SimClock
    from planner.testing.service import PlannerService

    directory.mkdir(parents=True, exist_ok=True)
    outbox = directory / "outbox"
    clock = SimClock(start)
    files = FileAdapter(directory=outbox, clock=clock.now)
    with clock, PlannerService(clock, directory, forward_to={"email": files, "sms": files}) as service:
        service.import_file(fixtures)
        for _ in range(hours):
            clock.advance(hours=1)
            if progress:
                progress(1)
        summary = _summarize(service.app.sessions, directory, start, clock.now())
        summary.planner_runs = len(service.runs)
    summary.outbox = {p.stem: str(p) for p in sorted(outbox.glob("*.jsonl"))}
    return summary


def _summarize(sessions: Any, directory: Path, start: datetime, end: datetime) -> DemoSummary:
    summary = DemoSummary(directory=directory, start=start, end=end)
    with sessions() as session:
        summary.recipients = len(session.scalars(select(col(Recipient.id))).all())
        zones = dict(session.execute(select(col(Recipient.id), col(Recipient.timezone))).all())
        names = dict(session.execute(select(col(Recipient.id), col(Recipient.external_id))).all())
        deliveries = session.scalars(select(Delivery)).all()
        planned = {
            e.delivery_id: e.detail or {}
            for e in session.scalars(select(DeliveryEvent).where(col(DeliveryEvent.event) == "planned"))
        }
    summary.deliveries = len(deliveries)
    for d in deliveries:
        summary.outcomes[d.status if not d.reason else f"{d.status} ({d.reason})"] += 1
        if d.status == "sent":
            summary.sent[d.channel] += 1
        detail = planned.get(d.id or 0, {})
        summary.deferred_by_quiet_hours += "quiet_hours" in detail
        summary.skipped_by_backoff += d.reason == "engagement_backoff"
        summary.suppressed_by_caps += d.reason == "frequency_cap"
        if "dst" in detail and d.occurrence_at is not None:
            local = to_local(d.occurrence_at, zones[d.recipient_id])
            summary.dst_examples.append(
                {
                    "recipient": names[d.recipient_id],
                    "zone": zones[d.recipient_id],
                    "local_date": str(d.local_date),
                    "wall_time": str(detail.get("wall_time")),
                    "resolved": local.strftime("%H:%M %Z"),
                    "rule": "gap: shifted forward" if detail["dst"] == "gap" else "overlap: first occurrence",
                    "status": d.status,
                }
            )
    summary.dst_examples.sort(key=lambda e: (e["local_date"], e["zone"], e["recipient"]))
    return summary
