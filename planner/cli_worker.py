"""Worker and scheduling commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.settings import QUEUES


def register(app: typer.Typer) -> None:
    """Attach ``planner worker`` and ``planner demo`` to the root app."""
    app.command("worker")(worker_command)
    app.command("demo")(demo_command)


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
    from rich.table import Table

    from planner.cli import _fail, _print_json, out, progress_bar
    from planner.demo import SAMPLE, run_demo

    source = fixtures or SAMPLE
    if not source.is_file():
        raise _fail(f"--fixtures: {str(source)!r} is not a readable file")
    if (directory / "planner.db").exists():
        raise _fail(f"--dir: {str(directory)!r} already holds a demo database; remove it or choose another")
    with progress_bar("simulating hours", hours) as advance:
        summary = run_demo(directory, source, hours=hours, progress=advance)
    if as_json:
        _print_json(summary.as_dict())
        return
    table = Table(
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
        dst = Table(title="DST adjustments seen")
        for column in ("recipient", "zone", "local date", "wall time", "planned at", "rule", "outcome"):
            dst.add_column(column, overflow="fold")
        for e in summary.dst_examples:
            dst.add_row(
                e["recipient"],
                e["zone"],
                e["local_date"],
                e["wall_time"],
                e["resolved"],
                e["rule"],
                e["status"],
            )
        out.print(dst)
    for channel, path in summary.outbox.items():
        out.print(f"sent {channel} messages: {path}")
    out.print(
        f"database: {directory / 'planner.db'}  (try: PLANNER_DATABASE_URL=sqlite:///{directory}/planner.db "
        "planner deliveries list --status sent)"
    )


def worker_command(
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", "-q", help="Queues in priority order (default: high default bulk)."),
    ] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Send what is due now, then exit.")] = False,
    recovery_interval: Annotated[
        float, typer.Option(help="Seconds between lease recovery and reconcile passes.")
    ] = 30.0,
) -> None:
    """Run an RQ worker (with its scheduler) that sends deliveries through the adapters."""
    from planner import jobs
    from planner.cli import _fail, err, service
    from planner.worker import MaintenanceThread, build_deliverer, make_worker, run_maintenance

    chosen = queues or list(QUEUES)
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown:
        raise _fail(f"--queues: {unknown[0]!r} is invalid; expected some of {', '.join(QUEUES)}")
    with service() as svc:
        svc.upgrade_database()
        deliverer = build_deliverer(svc)
        jobs.install(deliverer)
        run_maintenance(svc)
        maintenance = MaintenanceThread(svc, recovery_interval)
        if not burst:
            maintenance.start()
        worker = make_worker(svc, chosen)
        try:
            worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
        finally:
            maintenance.stopped.set()
            jobs.install(None)
            for adapter in {id(a): a for a in deliverer.adapters.values()}.values():
                adapter.close()
        err.print(f"worker {worker.name} stopped")
