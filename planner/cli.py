"""The ``planner`` command line.

Configuration comes from ``PLANNER_*`` environment variables (and an optional ``planner.toml``);
the list is in ``planner --help``. Human output is tables and progress bars on a terminal; every
command that reports has ``--json`` for machines. Errors name the field, value and expectation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from planner.app import App
from planner.clock import parse_instant
from planner.errors import InvalidInput, PlannerError
from planner.settings import Settings

T = TypeVar("T")


def _show_default(value: object) -> str:
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        if seconds % 3600 == 0:
            return f"PT{seconds // 3600}H"
        return f"PT{seconds // 60}M" if seconds % 60 == 0 else f"PT{seconds}S"
    if value is None or value == "":
        return "unset"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _settings_help() -> str:
    # "\b" keeps Click from re-flowing the block into one paragraph.
    lines = ["\b"]
    for name, info in Settings.model_fields.items():
        default = info.default if info.default_factory is None else info.default_factory()  # type: ignore[call-arg]
        lines.append(f"PLANNER_{name.upper()} = {_show_default(default)}")
        if info.description:
            lines.append(f"    {info.description}")
    return "\n\n".join(
        [
            "Plans scheduled notifications in each recipient's local time.",
            "Configuration: environment variables (or the same names, lower case and without the "
            "prefix, in planner.toml). Durations are ISO-8601 (PT4H); per-kind maps and lists are JSON.",
            "\n".join(lines),
        ]
    )


app = typer.Typer(
    help=_settings_help(),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"max_content_width": 120},
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Inspect and manage deliveries.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(deliveries_app, name="deliveries")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def service() -> Iterator[App]:
    """Build the service's dependencies from the settings, and close them afterwards."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PLANNER_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(f"invalid configuration: {problems}") from None
    from planner.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    instance = App(settings)
    try:
        yield instance
    except PlannerError as exc:
        raise _fail(str(exc)) from None
    finally:
        instance.close()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; silent in pipes."""
    if not err.is_terminal:
        yield lambda _n: None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def parse_option(value: str | None, parser: Callable[[str], T], field: str) -> T | None:
    if value is None:
        return None
    try:
        return parser(value)
    except InvalidInput as exc:
        raise _fail(f"--{field}: {exc.value!r} is invalid; expected {exc.expected}") from None


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("date", value, "a date YYYY-MM-DD") from None


def _parse_duration(value: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    if len(text) >= 2 and text[-1] in units and text[:-1].isdigit():
        return timedelta(seconds=int(text[:-1]) * units[text[-1]])
    raise InvalidInput("horizon", value, "a duration such as '90m', '1h' or '2d'")


def now_or(app_: App, value: str | None) -> datetime:
    return parse_option(value, lambda v: parse_instant(v, "now"), "now") or app_.clock()


# -- database and import -----------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the latest schema (creates the SQLite file if needed)."""
    with service() as svc:
        svc.upgrade_database()
        from planner.db import current_revision

        err.print(f"database at revision {current_revision(svc.engine)}")


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="JSON Lines file of recipients and engagement events.")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good lines and report the bad ones.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import recipients, subscriptions and engagement (atomic unless --skip-invalid)."""
    from planner.importer import ImportFailed, import_file

    if not file.is_file():
        raise _fail(f"FILE: {str(file)!r} is not a readable file")
    with service() as svc:
        svc.upgrade_database()
        with file.open(encoding="utf-8") as handle:
            total = sum(1 for line in handle if line.strip())
        try:
            with progress_bar("importing", total) as advance:
                report = import_file(
                    svc.sessions, file, svc.clock(), skip_invalid=skip_invalid, progress=advance
                )
        except ImportFailed as exc:
            if as_json:
                _print_json({"imported": False, "errors": [str(e) for e in exc.errors]})
            raise _fail(str(exc), code=1) from None
    if as_json:
        _print_json(report.as_dict())
    else:
        table = Table(title=f"import of {file}")
        table.add_column("what")
        table.add_column("count", justify="right")
        for key, value in report.as_dict().items():
            if key != "errors":
                table.add_row(key.replace("_", " "), str(value))
        out.print(table)
        for error in report.errors:
            err.print(f"[yellow]skipped[/] {error}", highlight=False)
    if report.errors:
        raise typer.Exit(1)


# -- planning ----------------------------------------------------------------------------------


@app.command("run")
def run_command(
    now: Annotated[
        str | None, typer.Option(help="Plan as if it were this instant (ISO-8601 with offset).")
    ] = None,
    horizon: Annotated[str, typer.Option(help="Plan occurrences up to now + horizon.")] = "1h",
    as_json: JsonOption = False,
) -> None:
    """Plan every due occurrence up to now + horizon and hand the sends to RQ."""
    from planner.run import build_runner

    with service() as svc:
        window = parse_option(horizon, _parse_duration, "horizon")
        assert window is not None
        at = now_or(svc, now)
        svc.upgrade_database()
        with progress_bar("planning", None) as advance:
            runner = build_runner(svc, progress=advance)
            report = runner.run(at, window)
    if as_json:
        _print_json(report.as_dict())
        return
    table = Table(title=f"planner run {report.run_id[:8]} up to {report.window_end.isoformat()}")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for key in (
        "subscriptions",
        "occurrences",
        "deliveries_created",
        "already_planned",
        "enqueued_jobs",
        "reconciled_deliveries",
        "dst_adjusted",
        "quiet_hours_deferred",
    ):
        table.add_row(key.replace("_", " "), str(report.as_dict()[key]))
    for outcome, count in sorted(report.outcomes.items()):
        table.add_row(f"outcome: {outcome}", str(count))
    for reason, count in sorted(report.reasons.items()):
        table.add_row(f"reason: {reason}", str(count))
    table.add_row("duration", f"{report.duration_seconds:.2f} s")
    out.print(table)


@app.command("simulate")
def simulate_command(
    recipient_id: Annotated[str, typer.Argument(help="The recipient's external id.")],
    days: Annotated[int, typer.Option(min=1, max=366, help="How many local days to show.")] = 14,
    from_date: Annotated[str | None, typer.Option("--from", help="First local date (YYYY-MM-DD).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a recipient's upcoming sends: local time with offset, UTC, and DST or quiet-hours notes."""
    from planner.recipients import simulate_recipient

    with service() as svc:
        start = parse_option(from_date, _parse_date, "from")
        sends, title = simulate_recipient(svc, recipient_id, start, days)
    if as_json:
        from planner.simulate import to_json_rows

        _print_json(to_json_rows(sends))
        return
    from planner.simulate import render_table

    out.print(render_table(sends, title))


# -- deliveries --------------------------------------------------------------------------------


@deliveries_app.command("list")
def deliveries_list(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Only this recipient (external id).")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    since: Annotated[str | None, typer.Option(help="Scheduled at or after this instant.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List deliveries in scheduled order."""
    from planner.models import DeliveryStatus
    from planner.queries import DeliveryFilter, list_deliveries

    if status is not None and status not in DeliveryStatus.__members__:
        raise _fail(f"--status: {status!r} is invalid; expected one of {', '.join(DeliveryStatus)}")
    with service() as svc:
        flt = DeliveryFilter(
            status=status,
            recipient=recipient,
            kind=kind,
            channel=channel,
            since=parse_option(since, lambda v: parse_instant(v, "since"), "since"),
            limit=limit if limit or as_json else 100,
        )
        with svc.sessions() as session:
            rows = list_deliveries(session, flt)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"{len(rows)} deliveries")
    for column in ("id", "recipient", "kind", "channel", "local date", "scheduled (UTC)", "status", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["recipient_id"],
            row["kind"],
            row["channel"],
            row["local_date"] or "",
            row["scheduled_at"],
            row["status"],
            row["reason"] or "",
        )
    out.print(table)


def _register_extensions() -> None:
    # Operations and worker commands live in their own modules to keep this one small.
    from planner import cli_ops, cli_worker

    cli_ops.register(app)
    cli_worker.register(app)


_register_extensions()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
