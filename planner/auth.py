"""Who is calling: an API token becomes a :class:`Principal` with scopes.

A placeholder for the scoped, hashed tokens being built on another branch, which replaces this
module at merge with the same interface. Until then the one configured ``PLANNER_API_TOKEN`` is a
principal with every scope.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from planner.app import App

SCOPES = frozenset({"read", "write", "admin"})


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]  # a subset of SCOPES


def authenticate(app: App, token: str) -> Principal | None:
    """The principal ``token`` stands for, or None (also when no token is configured)."""
    configured = app.settings.api_token
    expected = configured.get_secret_value() if configured is not None else ""
    if not expected or not token:
        return None
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return None
    return Principal("api-token", SCOPES)
