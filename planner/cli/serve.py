"""Long-running processes: the HTTP API and the hourly cron."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated, Any

import typer

from planner.cli.common import (
    err,
    service,
)


def _graceful_server_class() -> type[Any]:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Stops on SIGINT/SIGTERM like uvicorn, then returns instead of re-raising the signal.

        uvicorn re-raises the signal after shutting down, which would end the process before the
        service's cleanup runs and leave the embedded Redis server behind.
        """

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    return GracefulServer


#: What ``planner serve`` says when no secret is configured: it starts, with sessions of its own.
UNSIGNED_SESSIONS = (
    "warning: PLANNER_SIGNING_SECRET is unset: dashboard sessions are signed with a key made now, "
    "so they work with this process only and end when it stops; set PLANNER_SIGNING_SECRET "
    "(32 or more random bytes, the same on every `planner serve`) to share them"
)


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the HTTP API (FastAPI + uvicorn): health, readiness, metrics, deliveries, notify."""
    from planner.api import create_api
    from planner.api.server import server_config
    from planner.app import require_unsubscribe_links
    from planner.auth import any_token_configured

    with service(schema="upgrade") as svc:
        require_unsubscribe_links(svc.settings)  # the links the workers send must be verifiable here
        if not any_token_configured(svc):
            err.print(
                "[yellow]no API token (PLANNER_API_TOKEN or `planner tokens create`): every route but "
                "/healthz and /readyz answers 503[/]"
            )
        settings = svc.settings
        if settings.signing_secret is None or not settings.signing_secret.get_secret_value():
            err.print(UNSIGNED_SESSIONS, highlight=False)
        config = server_config(create_api(svc), settings, host, port)
        _graceful_server_class()(config).run()


def cron_command(
    once: Annotated[bool, typer.Option("--once", help="Try the current hour once, then exit.")] = False,
) -> None:
    """Start a planner run at the top of every UTC hour (once per hour across all cron processes)."""
    from planner.processes.cron import run_forever, try_hour

    with service(schema="upgrade", redis=True) as svc:
        if once:
            outcome = try_hour(svc, svc.clock())
            err.print(f"cron: {outcome.value}", highlight=False)
            return
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            err.print(
                f"cron: {signal.Signals(signum).name}, stopping after the current step", highlight=False
            )
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        run_forever(svc, stop)
