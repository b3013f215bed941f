"""Removing secrets, and the recipient's address, from error text before it is stored, shown or logged."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"
#: Shorter values would redact ordinary words; real passwords and tokens are longer.
MIN_SECRET_LENGTH = 4

_ASSIGNMENTS = re.compile(
    r"(?i)\b([a-z_]*(?:password|passwd|secret|token|api_?key|credential)[a-z_]*)(\s*[=:]\s*)(['\"]?)[^\s'\",;]+"
)
_AUTH_HEADERS = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{8,}")
_URL_PASSWORDS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secret values, ``password=...``-style assignments, HTTP auth
    credentials and passwords in URLs replaced by ``<redacted>``."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _ASSIGNMENTS.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{REDACTED}", text)
    text = _AUTH_HEADERS.sub(lambda m: f"{m[1]} {REDACTED}", text)
    return _URL_PASSWORDS.sub(lambda m: f"{m[1]}{REDACTED}@", text)


#: What stands for the recipient's address in a provider's error.
ADDRESS = "<address>"


def without_address(text: str, address: str) -> str:
    """A provider's error with the recipient's ``address`` (which an SMTP reply or an SMS API's message
    repeats) written as ``<address>``: one cause reads the same for every recipient, so the
    dead-letter page counts it as one group, and the error holds no address of its own."""
    if not address:
        return text
    return re.sub(re.escape(address), ADDRESS, text, flags=re.IGNORECASE)
