"""Operations commands: status, delivery management, pause/resume, explain, notify, engagement, serve, cron.

Each command is a thin shell over :mod:`planner.ops` (and friends), the same functions the HTTP API
calls. Invalid input is reported against the option or argument the user typed.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer
from rich.table import Table

from planner.errors import InvalidInput

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
IdArgument = Annotated[int, typer.Argument(help="The delivery id.", min=1)]

engagement_app = typer.Typer(help="Record engagement (opens, clicks, replies).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the operations commands to the root ``planner`` app."""
    from planner.cli import deliveries_app

    deliveries_app.command("show")(deliveries_show)
    deliveries_app.command("retry")(deliveries_retry)
    deliveries_app.command("cancel")(deliveries_cancel)
    app.command("status")(status_command)
    app.command("pause")(pause_command)
    app.command("resume")(resume_command)
    app.command("explain")(explain_command)
    app.command("notify")(notify_command)
    engagement_app.command("record")(engagement_record)
    app.add_typer(engagement_app, name="engagement")
    app.command("serve")(serve_command)
    app.command("cron")(cron_command)


@contextmanager
def _named(**names: str) -> Iterator[None]:
    """Report an ``InvalidInput`` against the option or argument that carried the value."""
    from planner.cli import _fail
    from planner.ops import StateConflict

    try:
        yield
    except StateConflict as exc:
        raise _fail(f"{exc.field} is {exc.value!r}: expected {exc.expected}", code=1) from None
    except InvalidInput as exc:
        name = names.get(exc.field, f"--{exc.field.replace('_', '-')}")
        raise _fail(f"{name}: {exc.value!r} is invalid; expected {exc.expected}") from None


def _key_value_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(key.replace("_", " "), "" if value is None else str(value))
    return table


# -- status ------------------------------------------------------------------------------------


def status_command(as_json: JsonOption = False) -> None:
    """Deliveries by status, queue depths, scheduled jobs, live workers and how late the planner is."""
    from planner.cli import _print_json, out, service
    from planner.status import collect_status

    with service() as svc:
        data = collect_status(svc, svc.clock())
    if as_json:
        _print_json(data)
        return
    out.print(_key_value_table("deliveries by status", data["deliveries"] or {"(none)": 0}))
    queues = Table(title="RQ queues")
    for column in ("queue", "waiting", "scheduled"):
        queues.add_column(column)
    for name, q in data["queues"].items():
        queues.add_row(name, str(q["depth"]), str(q["scheduled"]))
    out.print(queues)
    planner = data["planner"]
    last = planner["last_run"] or {}
    out.print(
        _key_value_table(
            "planner",
            {
                "live workers": data["workers"]["count"],
                "dead deliveries": data["dead"],
                "paused": ", ".join(f"{p['scope']}:{p['value']}" for p in data["paused"]) or "nothing",
                "last run": f"{last.get('status')} at {last.get('started_at')}" if last else "never",
                "since last successful run (s)": planner["seconds_since_last_successful_run"],
                "oldest overdue cursor": planner["oldest_overdue_cursor"],
                "late": "; ".join(planner["late"]) or "no",
            },
        )
    )


# -- deliveries --------------------------------------------------------------------------------


def deliveries_show(delivery_id: IdArgument, as_json: JsonOption = False) -> None:
    """One delivery with its data and its full timeline."""
    from planner.cli import _print_json, out, service
    from planner.queries import get_delivery

    with service() as svc, svc.sessions() as session:
        data = get_delivery(session, delivery_id)
    if as_json:
        _print_json(data)
        return
    fields = {k: v for k, v in data.items() if k not in ("timeline", "data")}
    fields["data"] = json.dumps(data["data"]) if data["data"] is not None else None
    out.print(_key_value_table(f"delivery {delivery_id}", fields))
    table = Table(title="timeline")
    for column in ("at (UTC)", "event", "status", "reason", "detail"):
        table.add_column(column)
    for e in data["timeline"]:
        detail = json.dumps(e["detail"], sort_keys=True) if e["detail"] else ""
        table.add_row(e["at"], e["event"], e["status"] or "", e["reason"] or "", detail)
    out.print(table)


def deliveries_retry(
    delivery_id: Annotated[
        int | None, typer.Argument(help="The delivery id (or use --all-dead).", min=1)
    ] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Redrive every dead delivery.")] = False,
    kind: Annotated[str | None, typer.Option(help="With --all-dead: only this kind.")] = None,
) -> None:
    """Redrive a dead delivery (a fresh attempt budget) or send a retrying one now."""
    from planner import ops
    from planner.cli import _fail, err, service

    if (delivery_id is None) == (not all_dead):
        raise _fail("give either a delivery ID or --all-dead (not both)")
    if kind is not None and not all_dead:
        raise _fail("--kind: only applies with --all-dead")
    with service() as svc, _named(kind="--kind", status="ID"):
        now = svc.clock()
        if delivery_id is not None:
            result = ops.retry(svc, delivery_id, now)
        else:
            result = ops.retry_all_dead(svc, now, kind)
    for d_id in result.requeued:
        err.print(f"delivery {d_id} queued again (job {result.job_ids[d_id]})", highlight=False)
    if all_dead:
        err.print(f"{len(result.requeued)} dead deliveries redriven", highlight=False)


def deliveries_cancel(delivery_id: IdArgument) -> None:
    """Cancel a pending delivery (planned, queued or retrying)."""
    from planner import ops
    from planner.cli import err, service

    with service() as svc, _named(status="ID"):
        ops.cancel(svc, delivery_id, svc.clock())
    err.print(f"delivery {delivery_id} cancelled", highlight=False)


# -- pause / resume ----------------------------------------------------------------------------

TargetArgument = Annotated[str, typer.Argument(metavar="CHANNEL|KIND", help="'email', 'sms' or a kind.")]


def pause_command(target: TargetArgument) -> None:
    """Pause a channel or a kind: its deliveries wait (they are not failed) until resumed."""
    from planner import ops
    from planner.cli import err, service

    with service() as svc, _named(target="CHANNEL|KIND"):
        result = ops.pause(svc, target, svc.clock())
    state = "paused" if result["changed"] else "was already paused"
    err.print(f"{result['scope']} {result['value']} {state}", highlight=False)


def resume_command(target: TargetArgument) -> None:
    """Resume a channel or a kind: the deliveries that waited for it are sent now."""
    from planner import ops
    from planner.cli import err, service

    with service() as svc, _named(target="CHANNEL|KIND"):
        result = ops.resume(svc, target, svc.clock())
    state = "resumed" if result["changed"] else "was not paused"
    err.print(
        f"{result['scope']} {result['value']} {state}; {result['requeued']} waiting deliveries queued",
        highlight=False,
    )


# -- explain -----------------------------------------------------------------------------------


def explain_command(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    date: Annotated[str | None, typer.Option(help="Local date YYYY-MM-DD (default: today there).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Why a recipient got, or did not get, a notification on a local date: every rule's verdict."""
    from planner.cli import _parse_date, _print_json, out, parse_option, service
    from planner.explain import explain, render

    local_date = parse_option(date, _parse_date, "date")
    with service() as svc:
        result = explain(svc, recipient, now=svc.clock(), kind=kind, local_date=local_date)
    if as_json:
        _print_json(result)
        return
    if not result["subscriptions"] and not result["adhoc"]:
        out.print(f"{recipient} has no subscriptions and no ad-hoc deliveries on {result['local_date']}")
    for table in render(result):
        out.print(table)


# -- notify and engagement ---------------------------------------------------------------------


def _parse_data(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput("data", value, f"a JSON object ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidInput("data", value, 'a JSON object such as \'{"code": "123456"}\'')
    return data


def notify_command(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    kind: Annotated[str, typer.Argument(help="The notification kind, e.g. password_reset.")],
    channel: Annotated[str, typer.Option(help="email or sms.")],
    dedup_key: Annotated[str | None, typer.Option(help="A repeat with the same key sends nothing.")] = None,
    data: Annotated[str | None, typer.Option(help="Template data as a JSON object.")] = None,
    priority: Annotated[
        str | None, typer.Option(help="high, default or bulk (default: the kind's queue).")
    ] = None,
    at: Annotated[str | None, typer.Option(help="Send at this instant (ISO-8601 with offset).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Send an ad-hoc notification through the planner's rules (dedup, opt-out, caps, quiet hours)."""
    from planner.cli import _print_json, err, parse_option, service
    from planner.clock import parse_instant
    from planner.notify import notify

    payload = parse_option(data, _parse_data, "data")
    when = parse_option(at, lambda v: parse_instant(v, "at"), "at")
    with service() as svc, _named(recipient_id="RECIPIENT", kind="KIND"):
        result = notify(
            svc,
            recipient,
            kind,
            channel,
            now=svc.clock(),
            dedup_key=dedup_key,
            data=payload,
            priority=priority,
            at=when,
        )
    if as_json:
        _print_json(result.as_dict())
        return
    err.print(f"delivery {result.delivery['id']}: {result.message}", highlight=False)


def engagement_record(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    event: Annotated[str, typer.Argument(help="opened, clicked or replied.")],
    at: Annotated[
        str | None, typer.Option(help="When it happened (ISO-8601 with offset; default now).")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="The kind engaged with, if known.")] = None,
) -> None:
    """Record an engagement event (it resets the recipient's inactivity for backoff)."""
    from planner import ops
    from planner.cli import err, parse_option, service
    from planner.clock import parse_instant

    when = parse_option(at, lambda v: parse_instant(v, "at"), "at")
    with service() as svc, _named(recipient_id="RECIPIENT", event="EVENT"):
        now = svc.clock()
        result = ops.record_engagement(svc, recipient, event, when or now, now, kind=kind)
    err.print(f"recorded {result['event']} for {recipient} at {result['at']}", highlight=False)


# -- long-running processes --------------------------------------------------------------------


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


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the HTTP API (FastAPI + uvicorn): health, readiness, metrics, deliveries, notify."""
    import uvicorn

    from planner.api import create_api
    from planner.cli import err, service

    with service() as svc:
        svc.upgrade_database()
        if svc.settings.api_token is None:
            err.print(
                "[yellow]PLANNER_API_TOKEN is not set: every route but /healthz and /readyz answers 503[/]"
            )
        config = uvicorn.Config(
            create_api(svc), host=host, port=port, log_config=None, log_level=svc.settings.log_level.lower()
        )
        _graceful_server_class()(config).run()


def cron_command(
    once: Annotated[bool, typer.Option("--once", help="Try the current hour once, then exit.")] = False,
) -> None:
    """Start a planner run at the top of every UTC hour (once per hour across all cron processes)."""
    from planner.cli import err, service
    from planner.cron import run_forever, try_hour

    with service() as svc:
        svc.upgrade_database()
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
