"""The dashboard's sign-in sessions: a row in the database, a cookie naming it, keys from one secret.

Signing in with an API token opens a session row (:mod:`planner.store.sessions`); the cookie holds
only a random session id and its HMAC, nothing else (never the API token). Each request checks the
row (not ended, used within PLANNER_UI_IDLE_TIMEOUT, younger than PLANNER_UI_SESSION_LIFETIME) and
the token it was opened with as that token is now: revoking the token or signing out ends the
session at once, and the session has the token's current scopes, not those it had at sign-in.

Keys are derived per purpose (session ids, CSRF tokens, the login form's nonce) from
PLANNER_SIGNING_SECRET as HMAC-SHA256 of the secret over the purpose's label, so every ``planner
serve`` process, before and after a restart, signs and checks alike; keys derived from
PLANNER_PREVIOUS_SIGNING_SECRETS are accepted when checking, never used to sign. Without a secret
the keys are random, made when the process starts: its sessions work on that process only, until
it stops (``planner serve`` says so when it starts).

A form that changes something carries the CSRF token, the HMAC of the session id under the CSRF key;
the cookie is ``SameSite=Strict`` and ``HttpOnly`` as well, so a forged cross-site post fails twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from planner.app import App
from planner.auth import Principal, authenticate, principal_of_digest, token_digest
from planner.settings import Settings
from planner.store import sessions as stored

COOKIE = "planner_ui"
LOGIN_COOKIE = "planner_ui_login"  # the login form's own CSRF nonce, before any session exists
LOGIN_LIFETIME = timedelta(minutes=30)

#: Each purpose's key label; the NUL keeps every label apart from any message signed elsewhere.
_PURPOSES = {
    "session": b"planner-ui-session-v1\x00",
    "csrf": b"planner-ui-csrf-v1\x00",
    "login": b"planner-ui-login-v1\x00",
}


@dataclass(frozen=True)
class UiSession:
    principal: Principal
    #: The CSRF tokens a form may carry: under the current key first, then under previous ones.
    csrf_tokens: tuple[str, ...]
    expires: datetime
    session_id: str = field(repr=False)

    @property
    def csrf(self) -> str:
        return self.csrf_tokens[0]

    @property
    def can_act(self) -> bool:
        return "admin" in self.principal.scopes


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Signer:
    """Signs with keys derived from ``secret``; checks under those of ``secret`` and ``previous``.

    ``Signer()`` has a random secret: what it signs, no other process can check.
    """

    def __init__(self, secret: bytes | None = None, previous: Sequence[bytes] = ()) -> None:
        self.configured = bool(secret)
        roots = [secret or secrets.token_bytes(32), *(p for p in previous if p)]
        self._keys = {
            purpose: [hmac.new(root, label, hashlib.sha256).digest() for root in roots]
            for purpose, label in _PURPOSES.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
        previous = [s.get_secret_value().encode() for s in settings.previous_signing_secrets]
        return cls(secret.encode() or None, previous)

    def _macs(self, purpose: str, value: str) -> list[str]:
        return [_b64(hmac.new(key, value.encode(), hashlib.sha256).digest()) for key in self._keys[purpose]]

    def sign(self, purpose: str, value: str) -> str:
        """``value.mac`` under the current key (``value`` holds no dot)."""
        return f"{value}.{self._macs(purpose, value)[0]}"

    def unsign(self, purpose: str, signed: str | None) -> str | None:
        """The value ``signed`` carries when its MAC checks under any key; else None."""
        if not signed or signed.count(".") != 1 or len(signed) > 400:
            return None
        value, mac = signed.split(".")
        ok = [hmac.compare_digest(mac.encode(), expected.encode()) for expected in self._macs(purpose, value)]
        return value if any(ok) else None

    def csrf_tokens(self, session_id: str) -> tuple[str, ...]:
        return tuple(self._macs("csrf", session_id))

    def login_nonce(self, now: datetime) -> tuple[str, str]:
        """A nonce for the login form, and the cookie value that vouches for it until it expires."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self.sign("login", f"{nonce}~{int((now + LOGIN_LIFETIME).timestamp())}")

    def check_login_nonce(self, cookie: str | None, nonce: str, now: datetime) -> bool:
        value = self.unsign("login", cookie)
        if value is None or not nonce or value.count("~") != 1:
            return False
        expected, _, expires = value.partition("~")
        if not expires.isascii() or not expires.isdigit() or int(expires) <= now.timestamp():
            return False
        return hmac.compare_digest(expected.encode(), nonce.encode())


def sign_in(
    app: App, signer: Signer, token: str, now: datetime, replacing: str | None = None
) -> tuple[str, UiSession] | None:
    """Open a session for ``token`` (the cookie's value and the session), or None for a token that
    does not authenticate. ``replacing``, the browser's previous cookie, ends that session."""
    principal = authenticate(app, token)
    if principal is None:
        return None
    session_id = secrets.token_urlsafe(32)
    expires = now + app.settings.ui_session_lifetime
    old = signer.unsign("session", replacing)
    with app.sessions() as db, db.begin():
        stored.forget_old_sessions(db, now)
        if old is not None:
            stored.end_session(db, _hash(old), now, "replaced")
        stored.open_session(db, _hash(session_id), token_digest(token), principal.name, now, expires)
    return signer.sign("session", session_id), _session(signer, principal, session_id, expires)


def current_session(app: App, signer: Signer, cookie: str | None, now: datetime) -> UiSession | None:
    """The live session the cookie names, as its token is now; None when there is none."""
    session_id = signer.unsign("session", cookie)
    if session_id is None:
        return None
    with app.sessions() as db:
        found = stored.live_session(db, _hash(session_id), now, app.settings.ui_idle_timeout)
    if found is None:
        return None
    principal = principal_of_digest(app, found.token_hash)
    with app.sessions() as db, db.begin():
        if principal is None:  # revoked since, or PLANNER_API_TOKEN changed
            stored.end_session(db, _hash(session_id), now, "revoked")
            return None
        stored.touch(db, found, now)
    return _session(signer, principal, session_id, found.expires_at)


def sign_out(app: App, session: UiSession, now: datetime) -> None:
    with app.sessions() as db, db.begin():
        stored.end_session(db, _hash(session.session_id), now, "logout")


def _session(signer: Signer, principal: Principal, session_id: str, expires: datetime) -> UiSession:
    return UiSession(principal, signer.csrf_tokens(session_id), expires, session_id)


def csrf_ok(session: UiSession, given: str | None) -> bool:
    """Whether a form's CSRF token is the session's (under the current key or a previous one)."""
    if not given:
        return False
    return any([hmac.compare_digest(token.encode(), given.encode()) for token in session.csrf_tokens])
