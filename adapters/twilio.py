"""SMS through the Twilio REST Messages API (or anything speaking its shape).

``timeout`` is the most one call may take (exposed as ``deadline``): connecting, sending the
request and reading the whole response together. Once the request body has been sent, a timeout
or a dropped connection is :class:`OutcomeUnknown`. Twilio has no idempotency key, so
:meth:`TwilioAdapter.lookup` asks its message list whether the message was accepted before a
resend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self

import httpx

from adapters._http_deadline import BodySent, DeadlineTransport, deadline_scope
from adapters.base import Message, SendResult, check_channel
from adapters.deadline import Deadline
from adapters.errors import AdapterConfigError, AdapterError, OutcomeUnknown, PermanentError, TransientError
from adapters.options import OptionReader, check_timeout, config_error

DEFAULT_BASE_URL = "https://api.twilio.com"
#: Seconds one call may take: Twilio answers a message create in well under a second.
DEFAULT_TIMEOUT = 10.0
#: Messages per page of a lookup's listing (Twilio allows up to 1000).
LOOKUP_PAGE_SIZE = 100
# Twilio error codes meaning the destination itself is unusable (invalid, landline, region not
# permitted, unreachable): the recipient's SMS channel should be marked invalid.
INVALID_ADDRESS_CODES: frozenset[int] = frozenset({21211, 21408, 21612, 21614})
# 21610: the recipient replied STOP. The number is fine; the recipient has opted out.
OPTED_OUT_CODES: frozenset[int] = frozenset({21610})

_E164 = re.compile(r"\+[1-9]\d{1,14}")
# Alphanumeric sender IDs are allowed in some countries instead of a number.
_ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header, given as delay-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < math.inf else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # RFC 9110 HTTP-dates are always GMT.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class TwilioAdapter:
    name: ClassVar[str] = "twilio"
    channels: ClassVar[frozenset[str]] = frozenset({"sms"})
    options: ClassVar[frozenset[str]] = frozenset(
        {
            "account_sid",
            "auth_token",
            "from_number",
            "messaging_service_sid",
            "base_url",
            "timeout",
            "status_callback",
        }
    )

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        status_callback: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not _ACCOUNT_SID.fullmatch(account_sid):
            raise config_error(self.name, "account_sid", account_sid, "'AC' followed by 32 hex digits")
        if not auth_token:
            raise config_error(self.name, "auth_token", auth_token, "the account's auth token", secret=True)
        if from_number is None and messaging_service_sid is None:
            raise AdapterConfigError(
                "twilio: set PLANNER_TWILIO_FROM_NUMBER (from_number) or "
                "PLANNER_TWILIO_MESSAGING_SERVICE_SID (messaging_service_sid)",
                option="from_number",
            )
        if from_number is not None and not (
            _E164.fullmatch(from_number) or _ALPHANUMERIC_SENDER.fullmatch(from_number)
        ):
            raise config_error(
                self.name, "from_number", from_number, "an E.164 number like '+15005550006' or a sender ID"
            )
        if messaging_service_sid is not None and not _SERVICE_SID.fullmatch(messaging_service_sid):
            raise config_error(
                self.name, "messaging_service_sid", messaging_service_sid, "'MG' followed by 32 hex digits"
            )
        _check_urls(base_url, status_callback)
        self.account_sid = account_sid
        self.status_callback = status_callback
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.base_url = base_url
        self.timeout = check_timeout(self.name, timeout)
        #: The most one ``send`` or ``lookup`` takes, in seconds (see :class:`adapters.base.Adapter`).
        self.deadline: float | None = self.timeout
        self.lookup_page_size = LOOKUP_PAGE_SIZE
        self._clock = clock
        self._path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._client = httpx.Client(
            base_url=base_url,
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=self.timeout,
            # A transport given for tests answers in memory; the network one enforces the deadline.
            transport=transport if transport is not None else DeadlineTransport(),
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> Self:
        read = OptionReader(cls.name, options, cls.options)
        return cls(
            account_sid=read.require("account_sid", "'AC' followed by 32 hex digits"),
            auth_token=read.require("auth_token", "the account's auth token"),
            from_number=read.get("from_number"),
            messaging_service_sid=read.get("messaging_service_sid"),
            base_url=read.get("base_url", DEFAULT_BASE_URL) or DEFAULT_BASE_URL,
            timeout=read.get_float("timeout", DEFAULT_TIMEOUT),
            status_callback=read.get("status_callback"),
        )

    def __repr__(self) -> str:
        return f"TwilioAdapter(account_sid={self.account_sid!r}, base_url={self.base_url!r})"

    def send(self, message: Message) -> SendResult:
        check_channel(self, message)
        if not _E164.fullmatch(message.to):
            raise PermanentError(f"{message.to!r} is not an E.164 phone number", invalid_address=True)
        form = {"To": message.to, "Body": message.text}
        if self.from_number is not None:
            form["From"] = self.from_number
        if self.messaging_service_sid is not None:
            form["MessagingServiceSid"] = self.messaging_service_sid
        if self.status_callback is not None:
            # Twilio posts the message's delivered/undelivered/failed status here.
            form["StatusCallback"] = self.status_callback
        deadline, sent = Deadline(self.timeout), BodySent()
        try:
            with deadline_scope(deadline):
                response = self._request(deadline, sent, "POST", self._path, data=form)
        except httpx.TransportError as exc:
            raise self._send_failure(exc, body_sent=sent.complete) from exc
        return self._result(response, message)

    def lookup(self, message: Message, since: datetime) -> SendResult | None:
        """Twilio's record of ``message`` if it accepted it at or after ``since``, else None.

        Reads the account's message list filtered by To, From and Twilio's day filter
        (``DateSent>``, the UTC day of ``since``), page by page within one deadline, and matches
        the recipient, the sender (From, or the messaging service), the body and ``date_created
        >= since`` (Twilio's clock, whole seconds: allow for skew in ``since``). A message Twilio
        has accepted but not yet sent has no sent date, and Twilio's day filter is on that date.

        Raises :class:`OutcomeUnknown` (``stage="lookup"``) when Twilio cannot answer: that is no
        licence to resend; :class:`AdapterConfigError` when it refuses the credentials.
        """
        check_channel(self, message)
        if since.tzinfo is None or since.utcoffset() is None:
            raise ValueError(f"since: {since!r} is naive; expected an aware datetime")
        since = since.astimezone(UTC).replace(microsecond=0)
        # Twilio's key is "DateSent>" with the day as its value: "DateSent%3E=2026-03-01" on the wire.
        query = {"To": message.to, "DateSent>": since.date().isoformat()}
        query["PageSize"] = str(self.lookup_page_size)
        if self.from_number is not None:
            query["From"] = self.from_number
        params: dict[str, str] | None = query
        deadline = Deadline(self.timeout)
        url: str | None = self._path
        with deadline_scope(deadline):
            while url is not None:
                page = self._listing_page(deadline, url, params)
                found = self._accepted(page, message, since)
                if found is not None:
                    return found
                url, params = _next_page(page, self._path), None
        return None

    def close(self) -> None:
        self._client.close()

    def _request(
        self, deadline: Deadline, sent: BodySent, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        """One request within ``deadline``; ``sent`` learns whether its body went out whole."""
        try:
            budget = deadline.remaining()
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc)) from exc
        request = self._client.build_request(
            method, url, timeout=budget, extensions={"trace": sent}, **kwargs
        )
        return self._client.send(request)

    def _send_failure(self, exc: httpx.TransportError, *, body_sent: bool) -> AdapterError:
        kind = type(exc).__name__
        if body_sent:
            return OutcomeUnknown(
                f"Twilio was sent the whole request, then {kind} ({exc}) before an answer; "
                "it may have accepted the message",
                stage="response",
            )
        if isinstance(exc, httpx.TimeoutException):
            return TransientError(
                f"Twilio timed out before the request was sent ({self.timeout:g}s deadline): {kind}"
            )
        return TransientError(f"Twilio unreachable: {kind}: {exc}")

    def _listing_page(self, deadline: Deadline, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        try:
            response = self._request(deadline, BodySent(), "GET", url, params=params)
        except httpx.TransportError as exc:
            raise OutcomeUnknown(
                f"Twilio could not be asked for its messages: {type(exc).__name__}: {exc}", stage="lookup"
            ) from exc
        status = response.status_code
        body = _json_object(response)
        if status in (401, 404):
            raise AdapterConfigError(
                f"Twilio answered {status} to the message list; "
                "check PLANNER_TWILIO_ACCOUNT_SID and PLANNER_TWILIO_AUTH_TOKEN",
                option="auth_token",
            )
        if status != 200 or not isinstance(body.get("messages"), list):
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            raise OutcomeUnknown(
                f"Twilio answered {status} to the message list: {response.text[:200]!r}",
                stage="lookup",
                retry_after=retry_after if status == 429 or status >= 500 else None,
            )
        return body

    def _accepted(self, page: dict[str, Any], message: Message, since: datetime) -> SendResult | None:
        for entry in page["messages"]:
            if not (isinstance(entry, dict) and self._is_ours(entry, message)):
                continue
            created = _twilio_date(entry.get("date_created"))
            sid = entry.get("sid")
            if created is None or not isinstance(sid, str) or not sid:
                raise OutcomeUnknown(
                    f"Twilio listed a matching message without a sid or date_created: {str(entry)[:200]}",
                    stage="lookup",
                )
            if created >= since:
                status = entry.get("status")
                return SendResult(provider_message_id=sid, detail=status if isinstance(status, str) else None)
        return None

    def _is_ours(self, entry: dict[str, Any], message: Message) -> bool:
        if self.from_number is not None:
            sender_matches = entry.get("from") == self.from_number
        else:
            sender_matches = entry.get("messaging_service_sid") == self.messaging_service_sid
        return (
            sender_matches
            and entry.get("to") == message.to
            and entry.get("body") == message.text
            and str(entry.get("direction", "outbound-api")).startswith("outbound")
        )

    def _result(self, response: httpx.Response, message: Message) -> SendResult:
        status = response.status_code
        body = _json_object(response)
        if 200 <= status < 300:
            sid = body.get("sid")
            if not isinstance(sid, str) or not sid:
                # Probably sent, so a retry could duplicate it; surface it instead.
                raise PermanentError(f"Twilio answered {status} without a sid: {response.text[:200]!r}")
            state = body.get("status")
            return SendResult(provider_message_id=sid, detail=state if isinstance(state, str) else None)
        code = body.get("code")
        text = body.get("message") if isinstance(body.get("message"), str) else response.text[:200]
        error = f" with error {code}" if code is not None else ""
        reason = f"Twilio answered {status}{error}: {text}"
        code_str = str(code) if code is not None else str(status)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            raise TransientError(reason, retry_after=retry_after, code=code_str)
        if code in OPTED_OUT_CODES:
            raise PermanentError(reason, opted_out=True, code=code_str)
        if code in INVALID_ADDRESS_CODES:
            raise PermanentError(reason, invalid_address=True, code=code_str)
        if status in (401, 404):
            # Wrong credentials or account sid fail every message alike: a settings problem.
            raise AdapterConfigError(
                f"{reason}; check PLANNER_TWILIO_ACCOUNT_SID and PLANNER_TWILIO_AUTH_TOKEN",
                option="auth_token",
            )
        raise PermanentError(reason, code=code_str)


def _check_urls(base_url: str, status_callback: str | None) -> None:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        url = httpx.URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise config_error(TwilioAdapter.name, "base_url", base_url, "an http(s) URL like 'https://api.twilio.com'")
    if status_callback is not None and not status_callback.startswith(("https://", "http://")):
        raise config_error(
            TwilioAdapter.name, "status_callback", status_callback, "an http(s) URL Twilio posts statuses to"
        )


def _twilio_date(value: object) -> datetime | None:
    """Twilio's RFC 2822 dates ("Mon, 02 Mar 2026 13:05:09 +0000"), aware, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _next_page(page: dict[str, Any], path: str) -> str | None:
    """The listing's next page (a path with its query), which must stay on the message list."""
    uri = page.get("next_page_uri")
    if not uri:
        return None
    if not (isinstance(uri, str) and uri.startswith(f"{path}?")):
        raise OutcomeUnknown(f"Twilio gave an unexpected next_page_uri: {str(uri)[:200]!r}", stage="lookup")
    return uri


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
