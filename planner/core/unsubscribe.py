"""One-click unsubscribe tokens (RFC 8058): signed, so they need no database row to verify.

A token is ``<payload>.<signature>``, both base64url: the payload names the recipient's row id (not
its external id, which an erased recipient frees for someone else), the kind and the channel; the
signature is HMAC-SHA256 of the payload under ``PLANNER_SIGNING_SECRET``. Nobody without the key
can forge one or enumerate them, and a token only ever opts its own recipient out of its own kind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

_PAYLOAD = re.compile(r"^([1-9][0-9]{0,18})\.([a-z][a-z0-9_]{0,99})\.(email|sms)$")
_DOMAIN = b"planner-unsubscribe-v1\x00"
MAX_TOKEN = 300


@dataclass(frozen=True)
class UnsubscribeTarget:
    recipient_id: int
    kind: str
    channel: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + payload, hashlib.sha256).digest()


def sign(secret: bytes, target: UnsubscribeTarget) -> str:
    payload = f"{target.recipient_id}.{target.kind}.{target.channel}".encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, payload))}"


def verify(secret: bytes, token: str) -> UnsubscribeTarget | None:
    """The target of a genuine token; ``None`` for anything else (no detail: nothing to probe)."""
    if not secret or len(token) > MAX_TOKEN or token.count(".") != 1:
        return None
    encoded, _, signature = token.partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, _signature(secret, payload)):
        return None
    match = _PAYLOAD.match(payload.decode("ascii", "replace"))
    if match is None:
        return None
    return UnsubscribeTarget(int(match.group(1)), match.group(2), match.group(3))
