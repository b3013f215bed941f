"""What every ``planner`` command shares: the consoles, the service context, options, output.

Command modules import from here and never from each other or from the root ``planner.cli``, so
the command line has no import cycles. Errors raised inside :func:`service` become one line on
stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from planner.errors import InvalidInput, PlannerError

if TYPE_CHECKING:
    from planner.app import App

T = TypeVar("T")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one error line; raise the returned exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def service() -> Iterator[App]:
    """Build the service's dependencies from the settings, and close them afterwards."""
    from pydantic import ValidationError

    from planner.app import App
    from planner.logs import configure_logging
    from planner.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PLANNER_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"invalid configuration: {problems}") from None
    configure_logging(settings.log_level, settings.log_format)
    instance = App(settings)
    try:
        yield instance
    except PlannerError as exc:
        raise fail(str(exc)) from None
    finally:
        instance.close()


@contextmanager
def named(**names: str) -> Iterator[None]:
    """Report an ``InvalidInput`` against the option or argument that carried the value."""
    from planner.operations.ops import StateConflict

    try:
        yield
    except StateConflict as exc:
        raise fail(f"{exc.field} is {exc.value!r}: expected {exc.expected}", code=1) from None
    except InvalidInput as exc:
        name = names.get(exc.field, f"--{exc.field.replace('_', '-')}")
        raise fail(f"{name}: {exc.value!r} is invalid; expected {exc.expected}") from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(key.replace("_", " "), "" if value is None else str(value))
    return table


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; silent in pipes."""
    if not err.is_terminal:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def parse_option(value: str | None, parser: Callable[[str], T], field: str) -> T | None:
    """``parser(value)``, reporting a bad value against the option ``--field``."""
    if value is None:
        return None
    try:
        return parser(value)
    except InvalidInput as exc:
        raise fail(f"--{field}: {exc.value!r} is invalid; expected {exc.expected}") from None


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("date", value, "a date YYYY-MM-DD") from None


def parse_duration(value: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    if len(text) >= 2 and text[-1] in units and text[:-1].isdigit():
        return timedelta(seconds=int(text[:-1]) * units[text[-1]])
    raise InvalidInput("horizon", value, "a duration such as '90m', '1h' or '2d'")


def parse_instant_option(value: str | None, field: str) -> datetime | None:
    from planner.clock import parse_instant

    return parse_option(value, lambda v: parse_instant(v, field), field)


def now_or(app: App, value: str | None) -> datetime:
    return parse_instant_option(value, "now") or app.clock()
