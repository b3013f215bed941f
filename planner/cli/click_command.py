"""The ``planner`` command line as a Click command, for tools that read Click (the docs' CLI reference).

Built on import, so only such tools import this module; ``planner`` itself never does.
"""

from __future__ import annotations

import typer

from planner.cli import app

#: The whole ``planner`` command tree, as Typer hands it to Click.
command = typer.main.get_command(app)
