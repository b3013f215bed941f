"""``planner worker``: an RQ worker that sends deliveries through the adapters."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.common import (
    err,
    fail,
    progress_bar,
    service,
)

if TYPE_CHECKING:
    from rq import SimpleWorker

    from planner.app import App
    from planner.processes.worker import BurstSummary


def worker_command(
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", "-q", help="Queues in priority order (default: high default bulk)."),
    ] = None,
    burst: Annotated[
        bool,
        typer.Option(
            "--burst",
            help="Send what is due now (waiting out rate-limit deferrals), print a summary, then exit.",
        ),
    ] = False,
    recovery_interval: Annotated[
        float, typer.Option(help="Seconds between lease recovery and reconcile passes.")
    ] = 30.0,
) -> None:
    """Run an RQ worker (with its scheduler) that sends deliveries through the adapters, and posts
    the outgoing webhooks."""
    from planner import jobs
    from planner.app import build_deliverer, build_webhook_sender
    from planner.processes.worker import (
        MaintenanceThread,
        SchedulerThread,
        WebhookThread,
        make_worker,
        run_maintenance,
    )
    from planner.settings import QUEUES

    chosen = queues or list(QUEUES)
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown:
        raise fail(f"--queues: {unknown[0]!r} is invalid; expected some of {', '.join(QUEUES)}")
    with service(schema="upgrade", redis=True) as svc:
        deliverer = build_deliverer(svc)
        worker = make_worker(svc, chosen, on_stop=deliverer.stopping.set)
        maintenance = MaintenanceThread(svc, recovery_interval, worker)
        scheduler = SchedulerThread(svc, chosen)
        webhooks = WebhookThread(build_webhook_sender(svc))
        # The deliverer serves this block's jobs only; adapters close on any way out (Redis down
        # in the first maintenance pass included).
        try:
            with jobs.serving(deliverer):
                run_maintenance(svc, grace=timedelta(0))  # starting: every pending row is checked
                if burst:
                    _print_summary(_burst(svc, worker), webhooks.sender.drain())
                else:
                    maintenance.start()
                    scheduler.start()
                    webhooks.start()
                    # The scheduler is our thread, not RQ's forked process (see SchedulerThread).
                    worker.work(with_scheduler=False, burst=False, logging_level="WARNING")
        finally:
            maintenance.stopped.set()
            scheduler.stop()
            webhooks.stop()
            webhooks.sender.close()
            for adapter in {id(a): a for a in deliverer.adapters.values()}.values():
                adapter.close()
        err.print(f"worker {worker.name} stopped")


def _burst(svc: App, worker: SimpleWorker) -> BurstSummary:
    from planner.processes.worker import work_burst

    with progress_bar("sending what is due", None) as advance:
        done = [0]

        def _progress(settled: int, total: int) -> None:
            advance(settled - done[0])
            done[0] = settled

        return work_burst(svc, worker, _progress)


def _print_summary(summary: BurstSummary, webhooks: int) -> None:
    outcomes = ", ".join(f"{n} {what}" for what, n in sorted(summary.by_outcome.items())) or "nothing"
    err.print(f"burst: {summary.due} due when it started: {outcomes}", highlight=False, soft_wrap=True)
    if webhooks:
        err.print(f"burst: {webhooks} webhook events posted (or their retries scheduled)", highlight=False)
    if summary.deferred_until:
        first, last = min(summary.deferred_until.values()), max(summary.deferred_until.values())
        span = first.isoformat() if first == last else f"{first.isoformat()} .. {last.isoformat()}"
        err.print(
            f"burst: {len(summary.deferred_until)} deferred by quiet hours, until {span}",
            highlight=False,
            soft_wrap=True,
        )
    if summary.still_rate_limited:
        err.print(
            f"[yellow]burst: {summary.still_rate_limited} still waiting for the rate limit[/] "
            "(another worker's scheduler holds them; they go when it runs)",
            highlight=False,
            soft_wrap=True,
        )
