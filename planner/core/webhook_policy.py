"""Outgoing webhooks' rules, pure: the retry schedule, what an endpoint URL may be, the secrets.

**Retries.** Attempt 1 goes as soon as a worker's webhook thread finds the event (within a second).
After failed attempt ``n`` the next waits ``15 s x 4^(n-1)``, at most 8 hours, plus up to 20 %
more at random (jitter, so that the events an outage held back do not all come back at the same
instant); never less. Ten attempts in all: 15 s, 1 min, 4 min, 16 min, 64 min, 4 h 16 min, then 8 h
three times, so the tenth comes 29.7 to 35.6 hours after the first. An event whose tenth attempt
fails is ``failed`` (it can still be redelivered by hand).

**URLs.** ``https://`` with a host and no credentials; ``http://`` and hosts that are loopback,
private, link-local or otherwise not on the public internet only when
``PLANNER_WEBHOOKS_ALLOW_PRIVATE`` is set (development, tests). Names are resolved, and every
address checked, at registration and again at each connection (:mod:`planner.delivery.webhook_http`).

**Secrets.** ``whsec_`` and the base64 of 24 random bytes, as the Standard Webhooks specification
writes them.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from planner.core.webhook_events import EVENT_TYPES
from planner.errors import InvalidInput

MAX_ATTEMPTS = 10
FIRST_WAIT = timedelta(seconds=15)
WAIT_FACTOR = 4
LONGEST_WAIT = timedelta(hours=8)
JITTER = 0.2

MAX_URL = 2000
MAX_DESCRIPTION = 500
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def retry_wait(attempt: int, rng: random.Random) -> timedelta | None:
    """How long after failed attempt ``attempt`` (1-based) the next one waits; None when it was
    the last."""
    if attempt >= MAX_ATTEMPTS:
        return None
    base: timedelta = min(LONGEST_WAIT, FIRST_WAIT * WAIT_FACTOR ** max(0, attempt - 1))
    return base * (1 + rng.uniform(0, JITTER))


def schedule_bounds() -> tuple[timedelta, timedelta]:
    """The shortest and longest time from the first attempt to the last (jitter at its extremes)."""
    waits = [min(LONGEST_WAIT, FIRST_WAIT * WAIT_FACTOR**n) for n in range(MAX_ATTEMPTS - 1)]
    total = sum(waits, timedelta())
    return total, total * (1 + JITTER)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_public(address: Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local, shared
    (CGNAT), multicast, reserved or unspecified; an IPv4 address mapped into IPv6 counts as itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class EndpointUrl:
    url: str
    scheme: str
    host: str
    port: int


def endpoint_url(value: Any, allow_private: bool, field: str = "url") -> EndpointUrl:
    """An endpoint's URL checked for its shape (the addresses its name resolves to are checked
    where the network is: :func:`planner.delivery.webhook_http.check_reachable`)."""
    expected = "an https:// URL with a host and no credentials" + (
        " (or http://)" if allow_private else " (http:// needs PLANNER_WEBHOOKS_ALLOW_PRIVATE)"
    )
    if not isinstance(value, str) or not value or len(value) > MAX_URL or not value.isprintable():
        raise InvalidInput(field, value, f"{expected}, at most {MAX_URL} characters")
    if any(c.isspace() for c in value):
        raise InvalidInput(field, value, f"{expected}, without spaces")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise InvalidInput(field, value, expected) from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput(field, value, expected)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(field, value, f"{expected}: put credentials in the signature, not the URL")
    if parts.fragment:
        raise InvalidInput(field, value, f"{expected}, without a #fragment")
    host = parts.hostname
    literal = _literal_address(host)
    if literal is not None and not allow_private and not is_public(literal):
        raise InvalidInput(
            field, value, "a public address (loopback, private and link-local ones need "
            "PLANNER_WEBHOOKS_ALLOW_PRIVATE)",
        )  # fmt: skip
    default_port = 443 if parts.scheme == "https" else 80
    return EndpointUrl(value, parts.scheme, host, port or default_port)


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def event_types(value: Any, field: str = "event_types") -> list[str]:
    """The event types an endpoint asks for: known ones, at least one, each once (sorted)."""
    known = ", ".join(EVENT_TYPES)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise InvalidInput(field, value, f"a list of event types, some of: {known}")
    for item in value:
        if item not in EVENT_TYPES:
            raise InvalidInput(field, item, f"one of: {known}")
    return sorted(set(value), key=EVENT_TYPES.index)


def description(value: Any, field: str = "description") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or not value.isprintable():
        raise InvalidInput(field, value, f"printable text of at most {MAX_DESCRIPTION} characters")
    return value.strip() or None
