"""Named API tokens with scopes: who may call which route, and whose name goes on each change.

A token is ``pln_`` plus 256 random bits; only its SHA-256 is stored, so a copy of the database
does not hold a usable token. The lookup is by digest (an index) and the digest is compared again
in constant time. ``PLANNER_API_TOKEN``, when set, is an admin token named :data:`ENV_TOKEN_NAME`.

Scopes are explicit (none implies another): ``read`` (GET routes), ``write`` (recipients,
subscriptions, events, notify, engagement) and ``admin`` (retry, cancel, pause and resume).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from planner.app import App
from planner.errors import InvalidInput, StateConflict
from planner.store import sessions as dashboard_sessions
from planner.store import tokens as stored_tokens
from planner.store.audit import record_audit

SCOPES = ("read", "write", "admin")
ENV_TOKEN_NAME = "api-token"
TOKEN_PREFIX = "pln_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def authenticate(app: App, token: str) -> Principal | None:
    """The principal a bearer token stands for, or ``None`` when it is unknown (or revoked)."""
    if not token:
        return None
    configured = app.settings.api_token
    expected = configured.get_secret_value() if configured is not None else ""
    given = token.encode("utf-8", "surrogatepass")
    if expected and hmac.compare_digest(given, expected.encode()):
        return Principal(ENV_TOKEN_NAME, frozenset(SCOPES))
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_digest(token)
    with app.sessions() as session:
        found = stored_tokens.token_by_digest(session, digest)
    if found is None or not hmac.compare_digest(found.token_hash.encode(), digest.encode()):
        return None
    return Principal(found.name, frozenset(found.scopes))


def principal_of_digest(app: App, digest: str) -> Principal | None:
    """Whom the token whose SHA-256 is ``digest`` stands for now (its current scopes), or None when it
    no longer works (revoked, or PLANNER_API_TOKEN changed): a dashboard session checks its token so."""
    configured = app.settings.api_token
    expected = configured.get_secret_value() if configured is not None else ""
    if expected and hmac.compare_digest(token_digest(expected).encode(), digest.encode()):
        return Principal(ENV_TOKEN_NAME, frozenset(SCOPES))
    with app.sessions() as session:
        found = stored_tokens.token_by_digest(session, digest)
    if found is None or not hmac.compare_digest(found.token_hash.encode(), digest.encode()):
        return None
    return Principal(found.name, frozenset(found.scopes))


def any_token_configured(app: App) -> bool:
    """Whether any token could authenticate (else the API answers 503 rather than run open)."""
    if app.settings.api_token is not None and app.settings.api_token.get_secret_value():
        return True
    with app.sessions() as session:
        return stored_tokens.any_token(session)


def token_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput("name", name, "1-100 characters of a-z, 0-9, '_', '.', '-', starting alphanumeric")
    if name == ENV_TOKEN_NAME:
        raise InvalidInput("name", name, f"a name other than {ENV_TOKEN_NAME!r} (PLANNER_API_TOKEN's)")
    return name


def parse_scopes(values: Iterable[str]) -> frozenset[str]:
    scopes = frozenset(v.strip() for value in values for v in value.split(",") if v.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput("scope", ",".join(unknown) or "", f"one or more of {', '.join(SCOPES)}")
    return scopes


def create_token(app: App, name: str, scopes: Iterable[str], now: datetime, actor: str = "cli") -> str:
    """A new token; the plain token is returned once and never stored."""
    name, granted = token_name(name), parse_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with app.sessions() as session, session.begin():
        # Locking the name's row would need the row; a unique constraint makes the race a conflict.
        if stored_tokens.name_taken(session, name):
            raise StateConflict("name", name, "a name no other token has (revoke it first)")
        stored_tokens.add_token(session, name, token_digest(token), granted, now)
        record_audit(session, now, actor, "token_created", name, {"scopes": sorted(granted)})
    return token


def list_tokens(app: App) -> list[dict[str, Any]]:
    with app.sessions() as session:
        found = stored_tokens.all_tokens(session)
    return [{"name": t.name, "scopes": list(t.scopes), "created_at": t.created_at} for t in found]


def revoke_token(app: App, name: str, now: datetime, actor: str = "cli") -> int | None:
    """Delete the token (it stops working at once) and end its dashboard sessions: how many were
    open, or None when there was no token of that name."""
    with app.sessions() as session, session.begin():
        digest = stored_tokens.delete_token(session, name)
        if digest is None:
            return None
        ended = dashboard_sessions.end_token_sessions(session, digest, now, "revoked")
        record_audit(session, now, actor, "token_revoked", name, {"sessions_ended": ended})
    return ended
