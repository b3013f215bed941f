"""Database schema and import commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.common import (
    JsonOption,
    err,
    escape,
    fail,
    new_table,
    out,
    print_json,
    progress_bar,
    service,
)


def db_upgrade() -> None:
    """Bring the database to the latest schema (creates the SQLite file if needed)."""
    with service(schema="upgrade") as svc:
        from planner.store.db import current_revision

        err.print(f"database at revision {current_revision(svc.engine)}")


def import_command(
    file: Annotated[Path, typer.Argument(help="JSON Lines file of recipients and engagement events.")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good lines and report the bad ones.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import recipients, subscriptions and engagement (atomic unless --skip-invalid)."""
    from planner.commands.importer import ImportFailed, import_file
    from planner.commands.recipients import plan_changes

    if not file.is_file():
        raise fail(f"FILE: {str(file)!r} is not a readable file")
    with service(schema="upgrade") as svc:
        with file.open("rb") as handle:
            total = sum(1 for line in handle if line.strip())
        try:
            with progress_bar("importing", total) as advance:
                report = import_file(
                    svc.sessions,
                    file,
                    svc.clock(),
                    skip_invalid=skip_invalid,
                    progress=advance,
                    require_template=svc.templates.require,
                )
        except ImportFailed as exc:
            if as_json:
                print_json({"imported": False, "errors": [str(e) for e in exc.errors]})
            raise fail(str(exc), code=1) from None
        # A subscription whose next send the last run's window already covered is planned now.
        plan_changes(svc, report.recipient_ids, svc.clock())
    if as_json:
        print_json(report.as_dict())
    else:
        # A file name need not be UTF-8: its other bytes are shown escaped (\xe9), not printed.
        name = os.fsencode(file).decode("utf-8", "backslashreplace")
        table = new_table(title=f"import of {name}")
        table.add_column("what")
        table.add_column("count", justify="right")
        for key, value in report.as_dict().items():
            if key != "errors":
                table.add_row(key.replace("_", " "), str(value))
        out.print(table)
        for error in report.errors:
            err.print(f"[yellow]skipped[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    if report.errors:
        raise typer.Exit(1)
