"""What every ``planner`` command shares: the consoles, the service context, options, output.

Command modules import from here and never from each other or from the root ``planner.cli``, so
the command line has no import cycles. Errors raised inside :func:`service` become one line on
stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast

import typer
from typer._click.exceptions import BadParameter
from typer.core import TyperCommand

from planner.errors import InvalidInput, PlannerError, Unavailable, shown

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from planner.app import App
    from planner.settings import Settings

T = TypeVar("T")


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich costs about 50 ms, which
    ``planner --help`` (printed by Click, not rich) should not pay."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out = cast("Console", _LazyConsole())
err = cast("Console", _LazyConsole(stderr=True))


def escape(text: str) -> str:
    """``text`` with rich markup escaped (rich loads on first use, see :class:`_LazyConsole`)."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def new_table(title: str, **options: Any) -> Table:
    """A rich table (rich loads on first use, see :class:`_LazyConsole`)."""
    from rich.table import Table

    return Table(title=title, **options)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one error line; raise the returned exit."""
    # Escaped: messages quote user values and JSON, whose brackets are not rich markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class TextCheckedCommand(TyperCommand):
    """A command whose text arguments and options follow the service's text rule before it runs
    (:func:`planner.core.validation.text`): bytes that are not UTF-8 reach Python as lone
    surrogates (``surrogateescape``), which no database, log or JSON answer can hold. Paths are
    not text: they reach the command as ``Path`` objects and stay as the file system has them."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click types
        from planner.core.validation import text

        for param in self.params:
            given = ctx.params.get(param.name)
            for value in given if isinstance(given, list | tuple) else (given,):
                if not isinstance(value, str):
                    continue
                name = param.opts[0] if param.param_type_name == "option" else _argument_name(param)
                try:
                    text(value, name)
                except InvalidInput as exc:
                    raise fail(f"{name}: {shown(exc.value)} is invalid; expected {exc.expected}") from None
        return super().invoke(ctx)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """A number out of its option's range, or not a number, refused in the house style (the
        option, the value given, what was expected) instead of the library's wording."""
        given = list(args)
        try:
            return list(super().parse_args(ctx, args))
        except BadParameter as exc:
            param = exc.param
            expected = _expected_number(param)
            if param is None or expected is None:
                raise
            raw, _, _ = self.make_parser(ctx).parse_args(args=given)
            name = param.opts[0] if param.param_type_name == "option" else _argument_name(param)
            raise fail(f"{name}: {shown(raw.get(param.name))} is invalid; expected {expected}") from None


def _expected_number(param: Any) -> str | None:
    """What a numeric option or argument takes, in words (None: not a number)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    kind = "a whole number" if annotation is int else "a number" if annotation is float else None
    if kind is None:
        return None
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{kind} from {low:,} to {high:,}"
    if low is not None:
        return f"{kind} of at least {low:,}"
    return f"{kind} of at most {high:,}" if high is not None else kind


def _argument_name(param: Any) -> str:
    return str(param.metavar or (param.name or "").upper())


def debug_enabled() -> bool:
    """``PLANNER_DEBUG=1`` (or ``planner --debug``, which sets it): tracebacks instead of one line."""
    return os.environ.get("PLANNER_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def load_settings() -> Settings:
    """The settings, or one line naming each bad ``PLANNER_*`` variable."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from planner.settings import Settings, settings_problems

    try:
        return Settings()
    except ValidationError as exc:
        if debug_enabled():
            raise
        raise fail(f"invalid configuration: {settings_problems(exc)}") from None
    except SettingsError as exc:
        if debug_enabled():
            raise
        raise fail(f"invalid configuration: {exc}") from None


@contextmanager
def service(*, schema: Literal["check", "upgrade", "skip"] = "check", redis: bool = False) -> Iterator[App]:
    """Build the service's dependencies from the settings, and close them afterwards.

    This is the CLI's one error path: a project error, a database or Redis that cannot be reached,
    or a schema that was never upgraded becomes one line on stderr and exit status 1 or 2 (see
    :func:`planner.app.translate_error`); ``PLANNER_DEBUG=1`` shows the traceback instead.

    ``schema``: ``check`` (the default) migrates the embedded SQLite database on first use and
    refuses an out-of-date PostgreSQL with the command to run; ``upgrade`` migrates any database;
    ``skip`` touches nothing (``planner db upgrade`` itself). ``redis``: the command needs Redis, so
    it is asked first, and a Redis that does not answer stops the command before the database is
    created or touched.
    """
    from planner.app import App, translate_error
    from planner.core.policy import PlanningPolicy
    from planner.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    instance = App(settings)
    try:
        # The settings the policy parses (quiet hours, caps, tiers, kinds) fail here, before
        # anything runs, rather than halfway through a command.
        PlanningPolicy.from_settings(settings)
        if redis:
            instance.require_redis()
        if schema == "upgrade":
            instance.upgrade_database()
        elif schema == "check":
            instance.ensure_schema()
        yield instance
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        error = translate_error(exc)
        if error is None or debug_enabled():
            raise
        raise fail(str(error), code=_exit_code(error)) from None
    finally:
        instance.close()


def _exit_code(error: PlannerError) -> int:
    """1: a dependency (database, Redis) is unavailable; 2: the input or configuration is wrong."""
    return 1 if isinstance(error, Unavailable) else 2


@contextmanager
def named(**names: str) -> Iterator[None]:
    """Report an ``InvalidInput`` against the option or argument that carried the value."""
    from planner.errors import StateConflict

    try:
        yield
    except StateConflict as exc:
        raise fail(f"{exc.field} is {shown(exc.value)}: expected {exc.expected}", code=1) from None
    except InvalidInput as exc:
        name = names.get(exc.field, f"--{exc.field.replace('_', '-')}")
        raise fail(f"{name}: {shown(exc.value)} is invalid; expected {exc.expected}") from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def key_value_table(title: str, rows: dict[str, Any]) -> Table:
    return key_values(title, rows).table()


@dataclass
class Grid:
    """A table of what a command reports, printed by :func:`print_grids`: rich's table on a terminal,
    tab-separated whole values in a pipe."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]] = field(default_factory=list)
    #: False for a block of "what: value" lines (its title heads the first column in a pipe).
    header: bool = True
    #: Options of each column on a terminal (``justify``...), by name.
    styles: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self) -> Table:
        table = new_table(self.title, show_header=self.header)
        for column in self.columns:
            # Whole values on a terminal too: a long one wraps inside its cell, never ends in '…'.
            table.add_column(column, **({"overflow": "fold"} | self.styles.get(column, {})))
        for row in self.rows:
            table.add_row(*row)
        return table

    def lines(self) -> list[str]:
        """The grid as tab-separated lines: a header, then a line a row; a tab inside a value becomes a
        space and its lines are joined by '; ', so each line is one row for ``cut``, ``sort``, ``awk``
        or ``tail``."""
        head = list(self.columns) if self.header else [self.title, *self.columns[1:]]
        return ["\t".join(_one_line(cell) for cell in cells) for cells in (head, *self.rows)]


def _one_line(cell: str) -> str:
    return "; ".join(cell.replace("\t", " ").splitlines())


def key_values(title: str, rows: dict[str, Any]) -> Grid:
    """A block of "what: value" lines (``None`` shown empty)."""
    cells = [(key.replace("_", " "), "" if value is None else str(value)) for key, value in rows.items()]
    return Grid(title, ("what", "value"), list(cells), header=False)


def print_grids(*grids: Grid, titles: bool | None = None) -> None:
    """Every list-like command's output. On a terminal, rich's tables; in a pipe (or a file), no
    table: each grid as tab-separated lines of whole values, a header line first, a blank line
    between grids. ``--json`` is the format for programs; this one is for ``| tail`` and ``| cut``.
    ``titles``: name each table on a "# title" line above its header (by default when there are several).
    """
    if out.is_terminal:
        for grid in grids:
            out.print(grid.table())
        return
    # Several tables: each one with a header line is named on a "# title" line above it (a block of
    # "what: value" lines already names itself), so a subscription's verdicts or the queues stay told
    # apart; one table (a list) starts with its header line.
    titled = len(grids) > 1 if titles is None else titles
    blocks = [
        "\n".join(([f"# {_one_line(grid.title)}"] if titled and grid.header else []) + grid.lines())
        for grid in grids
    ]
    sys.stdout.write("\n\n".join(blocks) + "\n")
    sys.stdout.flush()


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
        raise fail(f"--{field}: {shown(exc.value)} is invalid; expected {exc.expected}") from None


def parse_date(value: str) -> date:
    from planner.core.validation import local_date

    return local_date(value, "date")


def parse_duration(value: str) -> timedelta:
    """The settings' duration parser (:func:`planner.clock.parse_duration`), for options."""
    from planner.clock import parse_duration as shared

    return shared(value, "duration")


def parse_instant_option(value: str | None, field: str) -> datetime | None:
    from planner.clock import parse_instant

    return parse_option(value, lambda v: parse_instant(v, field), field)
