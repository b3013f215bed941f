"""``planner demo``: the whole service on the embedded default, over two simulated days.

From an empty directory it creates the SQLite database, starts an embedded real Redis, imports the
sample fixtures, then advances a simulated clock hour by hour across the 2026-03-08 daylight-saving
change in North America: the planner runs at every top of the hour and an in-process RQ worker
sends each due delivery at its simulated instant through the ``file`` adapter. Everything it
started is stopped before it returns.

Its email carries one-click unsubscribe links (the List-Unsubscribe header and the templates'
footers) to ``planner serve``'s default address, signed with a key made for the demo and kept in
its directory, so the links in the outbox work against the demo's database.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from planner.cli.common import fail, new_table, out, print_json, progress_bar

DEMO_START = datetime(2026, 3, 7, 0, 0, tzinfo=UTC)
DEMO_HOURS = 48
#: The committed sample (fixtures/sample.jsonl), shipped in the package as planner.samples.
SAMPLE = Path(str(resources.files("planner.samples").joinpath("sample.jsonl")))
#: ``planner serve``'s default address, where the outbox's unsubscribe links point.
DEMO_PUBLIC_URL = "http://127.0.0.1:8000"
SECRET_FILE = "signing-secret"


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
    from adapters.file import FileAdapter

    files = FileAdapter(directory=outbox, clock=clock.now)
    links = {"public_base_url": DEMO_PUBLIC_URL, "signing_secret": _signing_secret(directory)}
    service = PlannerService(clock, directory, links, forward_to={"email": files, "sms": files})
    with clock, service:
        service.import_file(fixtures)
        for _ in range(hours):
            clock.advance(hours=1)
            if progress:
                progress(1)
        summary = _summarize(service.app.sessions, directory, start, clock.now())
        summary.planner_runs = len(service.runs)
    summary.outbox = {p.stem: str(p) for p in sorted(outbox.glob("*.jsonl"))}
    return summary


def _signing_secret(directory: Path) -> str:
    """A key for the demo's unsubscribe links, readable by its owner only."""
    path = directory / SECRET_FILE
    path.touch(mode=0o600)
    path.write_text(secrets.token_urlsafe(32))
    return path.read_text()


def _summarize(sessions: Any, directory: Path, start: datetime, end: datetime) -> DemoSummary:
    from planner.core.localtime import to_local
    from planner.store.deliveries import all_deliveries
    from planner.store.queries import planned_details
    from planner.store.recipients import names_and_zones

    summary = DemoSummary(directory=directory, start=start, end=end)
    with sessions() as session:
        people = names_and_zones(session)
        deliveries = all_deliveries(session)
        planned = planned_details(session)
    summary.recipients = len(people)
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
            name, zone = people[d.recipient_id]
            local = to_local(d.occurrence_at, zone)
            summary.dst_examples.append(
                {
                    "recipient": name,
                    "zone": zone,
                    "local_date": str(d.local_date),
                    "wall_time": str(detail.get("wall_time")),
                    "resolved": local.strftime("%H:%M %Z"),
                    "rule": "gap: shifted forward" if detail["dst"] == "gap" else "overlap: first occurrence",
                    "status": d.status,
                }
            )
    summary.dst_examples.sort(key=lambda e: (e["local_date"], e["zone"], e["recipient"]))
    return summary


def demo_command(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its database, Redis data and outbox.")
    ] = Path("planner-demo"),
    fixtures: Annotated[Path | None, typer.Option(help="Recipients to import (JSON Lines).")] = None,
    hours: Annotated[int, typer.Option(min=1, max=24 * 60, help="Simulated hours to run.")] = 48,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Run the whole service on the embedded default over two simulated days, then summarise.

    Imports the sample fixtures, runs the hourly planner and a worker (file adapters) on a simulated
    clock from 2026-03-07 00:00 UTC, across the North American DST change, and stops everything.
    """
    source = fixtures or SAMPLE
    if not source.is_file():
        raise fail(f"--fixtures: {str(source)!r} is not a readable file")
    if (directory / "planner.db").exists():
        raise fail(f"--dir: {str(directory)!r} already holds a demo database; remove it or choose another")
    with progress_bar("simulating hours", hours) as advance:
        summary = run_demo(directory, source, hours=hours, progress=advance)
    if as_json:
        print_json(summary.as_dict())
        return
    table = new_table(
        title=f"demo: {summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC (simulated)"
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("recipients imported", str(summary.recipients))
    table.add_row("planner runs", str(summary.planner_runs))
    table.add_row("deliveries planned", str(summary.deliveries))
    for channel, count in sorted(summary.sent.items()):
        table.add_row(f"sent by {channel}", str(count))
    table.add_row("deferred by quiet hours", str(summary.deferred_by_quiet_hours))
    table.add_row("skipped by engagement backoff", str(summary.skipped_by_backoff))
    table.add_row("suppressed by frequency caps", str(summary.suppressed_by_caps))
    for outcome, count in sorted(summary.outcomes.items()):
        table.add_row(f"outcome: {outcome}", str(count))
    out.print(table)
    if summary.dst_examples:
        _print_dst_examples(summary.dst_examples)
    for channel, path in summary.outbox.items():
        out.print(f"sent {channel} messages: {path}")
    out.print(
        f"unsubscribe links point at {DEMO_PUBLIC_URL} (try: PLANNER_PUBLIC_BASE_URL={DEMO_PUBLIC_URL} "
        f"PLANNER_SIGNING_SECRET=$(cat {directory / SECRET_FILE}) "
        f"PLANNER_DATABASE_URL=sqlite:///{directory}/planner.db planner serve)",
        soft_wrap=True,
    )
    out.print(
        f"database: {directory / 'planner.db'}  (try: PLANNER_DATABASE_URL=sqlite:///{directory}/planner.db "
        "planner deliveries list --status sent)",
        soft_wrap=True,
    )


def _print_dst_examples(examples: list[dict[str, Any]]) -> None:
    """A table on a wide terminal; one line per example below 120 columns, where seven columns
    would split zone names over several lines."""
    if out.width < 120:
        out.print("DST adjustments seen:")
        for e in examples:
            out.print(
                f"  {e['recipient']}  {e['zone']}  {e['local_date']} {e['wall_time']} -> {e['resolved']}  "
                f"{e['status']}  ({e['rule']})",
                highlight=False,
                soft_wrap=True,
            )
        return
    dst = new_table(title="DST adjustments seen")
    for column in ("recipient", "zone", "local date", "wall time", "planned at", "rule", "outcome"):
        dst.add_column(column, overflow="fold")
    for e in examples:
        dst.add_row(
            e["recipient"], e["zone"], e["local_date"], e["wall_time"], e["resolved"], e["rule"], e["status"]
        )
    out.print(dst)
