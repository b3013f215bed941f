"""Provider feedback, pure: webhook signatures and what a provider's callback means for a delivery.

Three formats become one :class:`DeliveryReport` (or an :class:`InboundSms`): Twilio's form-encoded
status callbacks and inbound messages, Mailgun's signed JSON events, and the service's own
provider-neutral JSON (README, "Provider webhooks"). Everything here is a function of its inputs;
the store applies the result.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from planner.core import validation

#: Twilio's opt-out and opt-in keywords (its default Advanced Opt-Out set); the whole body, any case.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})

#: Twilio delivery error codes that mean the number itself is dead, so further SMS are pointless:
#: 30003 unreachable destination handset (switched off for good, or out of service), 30005 unknown
#: destination handset (the number does not exist or is no longer assigned), 30006 landline or
#: unreachable carrier (it cannot receive SMS). Codes that may pass (30001 queue overflow, 30002
#: account suspended, 30004 blocked, 30007 carrier filtering, 30008 unknown error) are recorded only:
#: they say something about this message or the account, not about the number.
DEAD_NUMBER_CODES = frozenset({"30003", "30005", "30006"})
#: Twilio's final message statuses; the others (queued, sending, sent, accepted) are progress.
TWILIO_FINAL = frozenset({"delivered", "undelivered", "failed"})

#: A Mailgun signature older (or newer) than this is refused: the signing token is only
#: remembered to refuse its reuse, and a captured old signature must not be replayable.
MAILGUN_MAX_AGE = timedelta(minutes=5)

#: The longest provider event or message id stored; longer ones are no provider's.
MAX_ID = 200

#: What a provider said of a message; ``provider_status`` on the delivery.
PROVIDER_STATUSES = ("delivered", "undelivered", "failed", "bounced", "deferred", "complained")


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on one message it accepted."""

    provider: str
    #: Unique per provider event: a repeat of the same callback is recognised by it.
    event_id: str
    message_id: str
    status: str
    code: str | None = None
    detail: str | None = None
    #: The address is dead: mark the recipient's channel invalid.
    dead_address: bool = False
    #: The recipient complained (spam button): opt them out of the delivery's kind.
    complaint: bool = False
    #: The signing token (Mailgun): may sign one event only.
    token: str | None = None

    def __post_init__(self) -> None:
        # Whichever door built it, a report whose text cannot be stored is refused before the store.
        for name in ("event_id", "message_id", "status", "code", "detail", "token"):
            validation.text(getattr(self, name), name)


@dataclass(frozen=True)
class InboundSms:
    event_id: str
    sender: str
    #: True for STOP and its synonyms, False for START/UNSTOP, None for anything else.
    opt_out: bool | None

    def __post_init__(self) -> None:
        validation.text(self.event_id, "MessageSid")
        validation.text(self.sender, "From")


# -- Twilio ----------------------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature``: base64 of HMAC-SHA1, keyed with the auth token, over the full URL
    followed by every POST parameter's name and value, sorted by name (repeated names by value)."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    signed = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signed(auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str) -> bool:
    return bool(signature) and hmac.compare_digest(twilio_signature(auth_token, url, params), signature)


def twilio_status(form: Mapping[str, str]) -> DeliveryReport | None:
    """A status callback's report; None for a progress status (queued, sent, ...). A field whose
    text cannot be stored is :class:`InvalidInput` naming it, signed or not."""
    validation.text(dict(form), "")
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not 0 < len(sid) <= MAX_ID or status not in TWILIO_FINAL:
        return None
    code = form.get("ErrorCode") or None
    return DeliveryReport(
        provider="twilio",
        event_id=f"{sid}:{status}",
        message_id=sid,
        status=status,
        code=code,
        detail=form.get("ErrorMessage") or None,
        dead_address=status != "delivered" and code in DEAD_NUMBER_CODES,
    )


def twilio_inbound(form: Mapping[str, str]) -> InboundSms:
    validation.text(dict(form), "")
    word = (form.get("Body") or "").strip().upper()
    opt_out = True if word in STOP_WORDS else False if word in START_WORDS else None
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    return InboundSms(sid if len(sid) <= MAX_ID else "", form.get("From") or "", opt_out)


# -- Mailgun ---------------------------------------------------------------------------------------


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook signature: hex HMAC-SHA256, keyed with the webhook signing key, over the
    timestamp and the token concatenated."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def mailgun_signed(signing_key: str, timestamp: str, token: str, signature: str, now: datetime) -> bool:
    """A valid signature made within :data:`MAILGUN_MAX_AGE` of ``now``."""
    try:
        age = abs(now.timestamp() - int(timestamp))
    except ValueError:
        return False
    if age > MAILGUN_MAX_AGE.total_seconds() or not token:
        return False
    return hmac.compare_digest(mailgun_signature(signing_key, timestamp, token), signature.lower())


def mailgun_event(event: Mapping[str, object], token: str) -> DeliveryReport | None:
    """What a Mailgun event says of the message; None for events that say nothing of delivery
    (accepted, opened, clicked, ...). Text that cannot be stored is :class:`InvalidInput`."""
    validation.text(dict(event), "event-data")
    kind = event.get("event")
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, Mapping) else None
    message_id = headers.get("message-id") if isinstance(headers, Mapping) else None
    event_id = event.get("id")
    if not (isinstance(message_id, str) and 0 < len(message_id) <= MAX_ID):
        return None
    if not (isinstance(event_id, str) and 0 < len(event_id) <= MAX_ID):
        return None
    status_info = event.get("delivery-status")
    code = status_info.get("code") if isinstance(status_info, Mapping) else None
    text = status_info.get("message") if isinstance(status_info, Mapping) else None

    def report(status: str, *, dead_address: bool = False, complaint: bool = False) -> DeliveryReport:
        return DeliveryReport(
            provider="mailgun",
            event_id=str(event_id),
            message_id=str(message_id),
            status=status,
            code=None if code is None else str(code),
            detail=text if isinstance(text, str) and text else None,
            dead_address=dead_address,
            complaint=complaint,
            token=token,
        )

    if kind == "delivered":
        return report("delivered")
    if kind == "failed":
        permanent = event.get("severity") == "permanent"
        return report("bounced" if permanent else "deferred", dead_address=permanent)
    if kind == "complained":
        return report("complained", complaint=True)
    return None


def message_id_forms(message_id: str) -> list[str]:
    """A Message-ID with and without its angle brackets: providers quote it either way."""
    bare = message_id.strip().removeprefix("<").removesuffix(">")
    return [bare, f"<{bare}>"]
