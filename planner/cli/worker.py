"""``planner worker``: an RQ worker that sends deliveries through the adapters."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli.common import (
    err,
    fail,
    service,
)
from planner.settings import QUEUES


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
    from planner.app import build_deliverer
    from planner.operations.worker import MaintenanceThread, make_worker, run_maintenance

    chosen = queues or list(QUEUES)
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown:
        raise fail(f"--queues: {unknown[0]!r} is invalid; expected some of {', '.join(QUEUES)}")
    with service() as svc:
        svc.upgrade_database()
        deliverer = build_deliverer(svc)
        run_maintenance(svc)
        maintenance = MaintenanceThread(svc, recovery_interval)
        if not burst:
            maintenance.start()
        worker = make_worker(svc, chosen, on_stop=deliverer.stopping.set)
        try:
            with jobs.serving(deliverer):
                worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
        finally:
            maintenance.stopped.set()
            for adapter in {id(a): a for a in deliverer.adapters.values()}.values():
                adapter.close()
        err.print(f"worker {worker.name} stopped")
