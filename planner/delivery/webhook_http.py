"""Posting a webhook to a URL someone else chose, safely.

* **Addresses**: a host name is resolved at each connection and every address it gives is checked
  (:func:`planner.core.webhook_policy.is_public`); one loopback, private or link-local address
  refuses the request, unless PLANNER_WEBHOOKS_ALLOW_PRIVATE is set. The connection then goes to an
  address that was checked, so a name cannot pass the check at registration and point inside the
  network later (DNS rebinding). :func:`check_reachable` applies the same check at registration.
* **Time**: one deadline for the whole call (the name look-up, connecting, TLS, sending and reading:
  :mod:`adapters._http_deadline`), so a receiver trickling its answer cannot hold a worker.
* **Size**: at most :data:`MAX_RESPONSE_BYTES` of the answer are read (uncompressed: none is asked
  for), and :data:`EXCERPT_CHARS` of them kept.
* **Redirects** are not followed (a 3xx is a failed attempt), and no proxy from the environment is
  used (it would connect on our behalf to an address nobody checked).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from dataclasses import dataclass

import httpx

from adapters import Deadline
from adapters._http_deadline import DeadlineTransport, deadline_scope, resolve_all
from planner.core.webhook_policy import EndpointUrl, is_public
from planner.errors import InvalidInput

MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 1000
#: The longest a registration waits for a name look-up.
REGISTRATION_LOOKUP = 5.0
USER_AGENT = "notification-planner-webhooks/1"

# Name look-ups run here so that a deadline can stop waiting for one (the resolver has no timeout).
_LOOKUPS = ThreadPoolExecutor(4, thread_name_prefix="webhook-dns")


def _lookup(host: str, port: int, budget: float | None) -> list[str]:
    future = _LOOKUPS.submit(resolve_all, host, port, None)
    try:
        return future.result(timeout=budget)
    except LookupTimeout:
        raise OSError(f"the name look-up took longer than {budget:.1f}s") from None


def refused_addresses(addresses: list[str]) -> list[str]:
    return [a for a in addresses if not is_public(ipaddress.ip_address(a.split("%", 1)[0]))]


def resolver(allow_private: bool) -> Callable[[str, int, float | None], list[str]]:
    """The look-up of every connection: bounded by the call's deadline, and refusing a name with
    any address that is not public (unless allowed)."""

    def resolve(host: str, port: int, budget: float | None) -> list[str]:
        addresses = _lookup(host, port, budget)
        refused = [] if allow_private else refused_addresses(addresses)
        if refused:
            raise OSError(f"refused: {host} resolves to {refused[0]}, which is not a public address")
        return addresses

    return resolve


def check_reachable(url: EndpointUrl, allow_private: bool, field: str = "url") -> None:
    """At registration: the URL's host resolves, and only to public addresses unless allowed."""
    try:
        addresses = _lookup(url.host, url.port, REGISTRATION_LOOKUP)
    except OSError as exc:
        raise InvalidInput(field, url.url, f"a URL whose host resolves ({url.host}: {exc})") from None
    refused = [] if allow_private else refused_addresses(addresses)
    if refused:
        raise InvalidInput(
            field, url.url, f"a public address ({url.host} resolves to {refused[0]}; loopback, "
            "private and link-local addresses need PLANNER_WEBHOOKS_ALLOW_PRIVATE)",
        )  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """What became of one request: the status code and the start of the body, or the error."""

    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class WebhookClient:
    """Posts signed bodies; one keep-alive pool for the worker's webhook thread."""

    def __init__(
        self, timeout: float, allow_private: bool, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.timeout = timeout
        self._client = httpx.Client(
            transport=transport or DeadlineTransport(resolver(allow_private)),
            follow_redirects=False,
            trust_env=False,
            timeout=timeout,
            # Uncompressed answers only: a few compressed bytes could expand past any bound.
            headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
        )

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        started = time.monotonic()
        deadline = Deadline(self.timeout)

        def elapsed() -> int:
            return round((time.monotonic() - started) * 1000)

        try:
            with (
                deadline_scope(deadline),
                self._client.stream("POST", url, content=body, headers=headers) as r,
            ):
                received = _read_at_most(r, MAX_RESPONSE_BYTES)
                status = r.status_code
                location = r.headers.get("location")
        except (httpx.HTTPError, OSError) as exc:
            return Answer(None, elapsed(), None, _error_text(exc))
        excerpt = received.decode("utf-8", "replace")[:EXCERPT_CHARS] or None
        error = None
        if 300 <= status < 400:
            error = f"redirect to {location or '(no Location)'} not followed"[:500]
        return Answer(status, elapsed(), excerpt, error)

    def close(self) -> None:
        self._client.close()


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The body's first ``limit`` bytes; the rest is never read (the connection is dropped)."""
    chunks, size = [], 0
    for chunk in response.iter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        text = f"timed out: {text}"
    return f"{type(exc).__name__}: {text}"[:500]
