"""What routes ask for through ``Depends``: the service (:class:`~planner.app.App`) and the caller.

Every route except ``/healthz``, ``/readyz``, the unsubscribe links and the signed provider webhooks
needs ``Authorization: Bearer <token>``: a token made by ``planner tokens create`` or
``PLANNER_API_TOKEN`` (an admin token named ``api-token``). A missing or unknown token is a 401, a
token without the route's scope (``read``, ``write`` or ``admin``, see :mod:`planner.auth`) a 403;
with no token configured at all the routes answer 503 rather than run open. Every change is recorded
with the token's name: ``actor`` in the timeline entry and a row in the audit log (:func:`audit`).
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency annotations at runtime.

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from planner.app import App
from planner.auth import Principal, any_token_configured, authenticate
from planner.store.audit import record_audit

_BEARER = HTTPBearer(auto_error=False, description="`planner tokens create` or PLANNER_API_TOKEN")


def app_of(connection: HTTPConnection) -> App:
    """The service the API was made around (``create_api`` keeps it in the application's state)."""
    app = connection.app.state.planner
    assert isinstance(app, App), "create_api() keeps the App in the application's state"
    return app


async def get_app(request: Request) -> App:
    # ``async``: reading the state never blocks, so it needs no worker thread.
    return app_of(request)


AppDep = Annotated[App, Depends(get_app)]


def identify(app: App, authorization: str) -> Principal:
    """The caller an ``Authorization`` header names: 401 when missing or unknown, 503 when no token
    exists at all (reads the database: on a worker thread)."""
    scheme, _, given = authorization.partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    principal = authenticate(app, given) if given else None
    if principal is None:
        if not any_token_configured(app):
            raise HTTPException(
                503, "API token not configured (set PLANNER_API_TOKEN or run `planner tokens create`)"
            )
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
    return principal


def remember_caller(connection: HTTPConnection, principal: Principal) -> None:
    """Keep the identified caller for the rest of the request (the route class identifies it first)."""
    connection.state.caller = principal


def caller(
    request: Request,
    app: AppDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    """The token's :class:`Principal` (see :func:`identify`), identified once per request."""
    known = getattr(request.state, "caller", None)
    if isinstance(known, Principal):
        return known
    given = f"Bearer {credentials.credentials}" if credentials is not None else ""
    principal = identify(app, given)
    remember_caller(request, principal)
    return principal


def holding(principal: Principal, scope: str) -> Principal:
    """The principal when it holds ``scope``; else 403 naming what it has."""
    if scope not in principal.scopes:
        raise HTTPException(
            403,
            f"token {principal.name!r} lacks the {scope!r} scope "
            f"(it has {', '.join(sorted(principal.scopes))})",
        )
    return principal


def require_read(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    return holding(principal, "read")


def require_write(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    return holding(principal, "write")


def require_admin(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    return holding(principal, "admin")


#: The scope each ``require_*`` dependency holds the caller to (the route class checks it early).
REQUIRED_SCOPE = {require_read: "read", require_write: "write", require_admin: "admin"}


#: The caller, holding the scope the name says.
Reader = Annotated[Principal, Depends(require_read)]
Writer = Annotated[Principal, Depends(require_write)]
Admin = Annotated[Principal, Depends(require_admin)]


def has_read_token(app: App, header: str) -> bool:
    """Whether an ``Authorization`` header carries a token with the read scope (never refuses)."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    principal = authenticate(app, given.strip())
    return principal is not None and "read" in principal.scopes


def audit(
    app: App, principal: Principal, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """The audit log's entry for a change the caller made (after it committed)."""
    with app.sessions() as session, session.begin():
        record_audit(session, app.clock(), principal.name, action, target, detail)
