"""The dashboard's sign-in session: a signed cookie, its CSRF token and its expiry.

The cookie holds the principal's name and scopes, an expiry and a random CSRF token, signed with
HMAC-SHA256 under a key made when the server starts: nothing secret is in it (never the API
token), and a server restart signs everyone out. A form that changes something carries the CSRF
token; the cookie is ``SameSite=Strict`` as well, so a forged cross-site post fails twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from planner.auth import Principal

COOKIE = "planner_ui"
LOGIN_COOKIE = "planner_ui_login"  # the login form's own CSRF nonce, before any session exists
LIFETIME = timedelta(hours=12)
LOGIN_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class UiSession:
    principal: Principal
    csrf: str
    expires: datetime

    @property
    def can_act(self) -> bool:
        return "admin" in self.principal.scopes


class Signer:
    """Signs and checks cookie values under one key (per server process)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, payload, hashlib.sha256).digest()).decode()

    def sign(self, data: dict[str, object]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode())
        return f"{payload.decode()}.{self._mac(payload)}"

    def unsign(self, value: str | None) -> dict[str, object] | None:
        if not value or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload.encode()).encode()):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def new_session(self, principal: Principal, now: datetime) -> tuple[str, UiSession]:
        session = UiSession(principal, secrets.token_urlsafe(24), now + LIFETIME)
        value = self.sign(
            {
                "name": principal.name,
                "scopes": sorted(principal.scopes),
                "csrf": session.csrf,
                "exp": session.expires.timestamp(),
            }
        )
        return value, session

    def session(self, value: str | None, now: datetime) -> UiSession | None:
        data = self.unsign(value)
        if data is None:
            return None
        name, scopes, csrf, exp = data.get("name"), data.get("scopes"), data.get("csrf"), data.get("exp")
        if not (isinstance(name, str) and isinstance(scopes, list) and isinstance(csrf, str)):
            return None
        if not isinstance(exp, int | float) or exp <= now.timestamp():
            return None
        expires = datetime.fromtimestamp(exp, tz=now.tzinfo)
        return UiSession(Principal(name, frozenset(str(s) for s in scopes)), csrf, expires)

    def login_nonce(self, now: datetime) -> tuple[str, str]:
        """A nonce for the login form, and the cookie value that vouches for it."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self.sign({"login": nonce, "exp": (now + LOGIN_LIFETIME).timestamp()})

    def check_login_nonce(self, cookie: str | None, nonce: str, now: datetime) -> bool:
        data = self.unsign(cookie)
        if data is None or not nonce:
            return False
        expected, exp = data.get("login"), data.get("exp")
        if not isinstance(expected, str) or not isinstance(exp, int | float) or exp <= now.timestamp():
            return False
        return hmac.compare_digest(expected.encode(), nonce.encode())


def csrf_ok(session: UiSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())
