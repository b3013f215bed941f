"""Worker and scheduling commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach ``planner worker`` and ``planner cron`` to the root app."""
