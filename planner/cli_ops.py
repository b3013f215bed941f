"""Operations commands (status, deliveries management, pause/resume, explain, notify, engagement)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the operations commands to the root ``planner`` app."""
