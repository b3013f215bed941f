"""The database's side of the readiness check: does it answer a query at all."""

from __future__ import annotations

from sqlalchemy import Engine, text


def ping(engine: Engine) -> None:
    """Run the cheapest query on a fresh connection from the pool; raises if the database cannot."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
