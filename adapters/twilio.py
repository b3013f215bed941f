"""SMS through the Twilio REST Messages API (or anything speaking its shape)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self

import httpx

from adapters.base import Message, SendResult, check_channel
from adapters.errors import AdapterConfigError, PermanentError, TransientError
from adapters.options import OptionReader, check_timeout, config_error

DEFAULT_BASE_URL = "https://api.twilio.com"
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
        timeout: float = 10.0,
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
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL:
            url = httpx.URL()
        if url.scheme not in ("http", "https") or not url.host:
            raise config_error(
                self.name, "base_url", base_url, "an http(s) URL like 'https://api.twilio.com'"
            )
        if status_callback is not None and not status_callback.startswith(("https://", "http://")):
            raise config_error(
                self.name, "status_callback", status_callback, "an http(s) URL Twilio posts statuses to"
            )
        self.account_sid = account_sid
        self.status_callback = status_callback
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.base_url = base_url
        self.timeout = check_timeout(self.name, timeout)
        self._clock = clock
        self._path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._client = httpx.Client(
            base_url=base_url,
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=self.timeout,
            transport=transport,
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
            timeout=read.get_float("timeout", 10.0),
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
        try:
            response = self._client.post(self._path, data=form)
        except httpx.TimeoutException as exc:
            # Twilio has no idempotency key, so a read timeout may still have sent the SMS; the
            # retry policy is the caller's to weigh.
            raise TransientError(f"Twilio timed out after {self.timeout:g}s: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc
        return self._result(response, message)

    def close(self) -> None:
        self._client.close()

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
            raise PermanentError(f"{reason} (to {message.to})", opted_out=True, code=code_str)
        if code in INVALID_ADDRESS_CODES:
            raise PermanentError(f"{reason} (to {message.to})", invalid_address=True, code=code_str)
        if status in (401, 404):
            # Wrong credentials or account sid fail every message alike: a settings problem.
            raise AdapterConfigError(
                f"{reason}; check PLANNER_TWILIO_ACCOUNT_SID and PLANNER_TWILIO_AUTH_TOKEN",
                option="auth_token",
            )
        raise PermanentError(reason, code=code_str)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
