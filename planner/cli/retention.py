"""``planner prune`` (the retention, now or counted) and ``planner db partition`` (PostgreSQL's move to
monthly partitions on a live database)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from planner.cli.common import JsonOption, err, fail, key_value_table, out, print_json, service


def prune_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")
    ] = False,
    now: Annotated[bool, typer.Option("--now", help="Remove everything past its retention now.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove what is past its retention (PLANNER_*_RETENTION): final deliveries with their
    timelines, the audit log, planner runs, engagement events, idempotency keys. The workers do it
    unattended; this runs it (or counts it) now, in the same bounded batches."""
    from planner.commands import retention

    if dry_run == now:
        raise fail("give either --dry-run (count what would go) or --now (remove it)")
    with service() as svc:
        at = svc.clock()
        data = retention.dry_run(svc, at) if dry_run else retention.prune(svc, at).as_dict()
    if as_json:
        print_json(data)
        return
    verb = "would remove" if dry_run else "removed"
    rows = {kind: n for kind, n in data["removed"].items() if n} or {"(nothing)": 0}
    out.print(key_value_table(f"retention: {verb}", rows))
    for what in ("months_dropped", "months_created"):
        if data[what]:
            err.print(f"{what.replace('_', ' ')}: {', '.join(data[what])}", highlight=False)


def partition_command(
    batch: Annotated[
        int, typer.Option(min=1000, max=1_000_000, help="Rows copied per transaction.")
    ] = 50_000,
    pause: Annotated[float, typer.Option(min=0.0, max=60.0, help="Seconds to rest between batches.")] = 0.0,
) -> None:
    """PostgreSQL: move the delivery table and its timeline into monthly partitions while the service
    runs (after `planner db upgrade`): copy in batches, then swap in one short transaction."""
    from planner.commands import partitioning

    with service(schema="upgrade") as svc:
        if svc.settings.is_sqlite:
            raise fail("planner db partition: only PostgreSQL partitions its tables (SQLite prunes rows)")

        def progress(table: str, last_id: int) -> None:
            err.print(f"{table}: copied through id {last_id:,}", highlight=False)
            if pause:
                time.sleep(pause)

        result = partitioning.move_to_partitions(svc, batch, progress)
    err.print(result, highlight=False)
