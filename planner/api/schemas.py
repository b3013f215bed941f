"""The API's types: request and response bodies, and the validated path, query and body values.

The id and kind rules are core's (:mod:`planner.core.validation`); here they are also written as
patterns into the OpenAPI document, which clients and schemathesis read.
"""

# No ``from __future__ import annotations``: FastAPI and pydantic read these annotations at runtime.

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Body, Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from planner.clock import WINDOW_TEXT, ensure_utc
from planner.core import validation
from planner.core.status import EngagementKind
from planner.errors import InvalidInput, shown

Priority = Literal["high", "default", "bulk"]
ChannelName = Literal["email", "sms"]
EXTERNAL_ID = f"^{validation.EXTERNAL_ID_PATTERN}$"
KIND = f"^{validation.KIND_PATTERN}$"
TARGET = f"^(email|sms|{validation.KIND_PATTERN})$"

_NUMBER = re.compile(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")


def _bounded(value: datetime) -> datetime:
    try:
        return ensure_utc(value, "instant")
    except InvalidInput as exc:
        # Pydantic puts the field in ``loc``; the message says what was wrong with the value.
        raise ValueError(f"{shown(exc.value)} is invalid; expected {exc.expected}") from None


def _iso_text(value: object) -> object:
    # Pydantic would read 1 or "1" as a Unix timestamp: a typo must not become 1970-01-01.
    if not isinstance(value, str | datetime) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError(f"{shown(value)} is invalid; expected an ISO-8601 timestamp with an offset")
    return value


#: An aware instant inside the service's window (1970..2200), as UTC, written in ISO 8601.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_bounded),
    Field(description=f"ISO-8601 with offset; {WINDOW_TEXT}"),
]
RowId = Annotated[int, Path(ge=1, le=validation.ID_MAX, description="The delivery id.")]
LocalDate = Annotated[
    date | None,
    AfterValidator(lambda v: None if v is None else validation.local_date(v)),
    Query(alias="date", description="Local date (default: today); 1970-01-02 to 2199-12-31"),
]
RecipientId = Annotated[str, Path(pattern=EXTERNAL_ID, description="The recipient's external id.")]
Kind = Annotated[str, Path(pattern=KIND, description="Notification kind.")]


class NotifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(pattern=EXTERNAL_ID, description="The recipient's external id.")
    kind: str = Field(pattern=KIND, description="Notification kind, e.g. 'password_reset'.")
    channel: ChannelName
    dedup_key: str | None = Field(None, min_length=1, max_length=255, description="Repeat-safe key.")
    data: dict[str, Any] | None = Field(None, description="Template data.")
    priority: Priority | None = Field(None, description="Queue; default: the kind's queue.")
    at: Instant | None = Field(None, description="Send at (default: now).")

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return validation.external_id(value, "recipient_id")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        return validation.kind(value, "kind")


class EngagementRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(pattern=EXTERNAL_ID)
    event: EngagementKind
    at: Instant
    kind: str | None = Field(None, pattern=KIND)

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return validation.external_id(value, "recipient_id")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        return None if value is None else validation.kind(value, "kind")


class EventRequest(BaseModel):
    """Something that happened for a recipient, for the next digest of ``kind``."""

    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(pattern=EXTERNAL_ID, description="The recipient's external id.")
    kind: str = Field(pattern=KIND, description="The digest's kind, e.g. 'comments_digest'.")
    data: dict[str, Any] | None = Field(None, description="What the digest's template lists.")
    occurred_at: Instant | None = Field(None, description="When it happened (default: now).")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=255, description="Repeat-safe: the same key records one event."
    )

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return validation.external_id(value, "recipient_id")


class Preference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opted_out: bool


# Recipients and subscriptions travel as import lines (``planner import``'s format without ``type``),
# parsed by the importer's own code: the API accepts exactly what ``planner import`` accepts.
_EXAMPLE = {
    "timezone": "Europe/Paris",
    "email": "ann@example.com",
    "quiet_hours": {"email": {"start": "22:00", "end": "07:00"}},
    "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": "08:00", "days": "daily"}],
}
Document = Annotated[
    dict[str, Any],
    Body(
        description="An import line without `type`: timezone, email, phone, quiet_hours, opt_out, "
        "locale, attributes, subscriptions (the full desired state: subscriptions left out stop).",
        openapi_examples={"recipient": {"value": _EXAMPLE}},
    ),
]
Changes = Annotated[
    dict[str, Any],
    Body(
        description="Some of timezone, email, phone, quiet_hours, opt_out, locale (BCP 47) and "
        "attributes (a JSON object templates get as recipient.attributes, up to 4096 bytes; replaced "
        "whole); the rest is kept.",
        openapi_examples={
            "zone": {"value": {"timezone": "America/New_York"}},
            "template data": {"value": {"locale": "pt-BR", "attributes": {"plan": "pro"}}},
        },
    ),
]
SubscriptionBody = Annotated[
    dict[str, Any],
    Body(
        description="`at` (HH:MM local, or a list), `days` ('daily', 'weekdays', 'mon,thu' or a list) "
        "or `rrule`, `start_date`, `end_date`, `snooze_until`, `digest`, `active`.",
        openapi_examples={"weekly": {"value": {"at": "10:45", "days": "mon,thu"}}},
    ),
]
SubscriptionChanges = Annotated[
    dict[str, Any],
    Body(
        description="Some fields of the subscription (as PUT takes them); the rest is kept. "
        "`snooze_until` null ends a snooze.",
        openapi_examples={"snooze": {"value": {"snooze_until": "2026-12-24"}}},
    ),
]


# What a provider's delivery report changed.
class Outcome(BaseModel):
    recorded: bool
    reason: str | None = None
    delivery_id: int | None = None
    provider_status: str | None = None
    effects: list[str] = []


class MailgunSignature(BaseModel):
    timestamp: str | int
    token: str = Field(max_length=255)
    signature: str = Field(max_length=128)


class MailgunWebhook(BaseModel):
    """Mailgun's webhook body: the signature and the event."""

    model_config = ConfigDict(populate_by_name=True)

    signature: MailgunSignature | None = None
    event_data: dict[str, Any] = Field(default_factory=dict, alias="event-data")


class EmailEvent(BaseModel):
    """The provider-neutral email event (README, "Provider webhooks")."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=255, description="Unique per event: a repeat is ignored.")
    event: Literal["delivered", "bounced", "deferred", "complained"] = Field(
        description="bounced: a permanent failure (the address is marked invalid); deferred: a "
        "temporary one; complained: the recipient reported spam (opted out of the kind)."
    )
    message_id: str = Field(min_length=1, max_length=255, description="The Message-ID the service sent.")
    code: str | None = Field(None, max_length=20, description="The provider's code, e.g. '550'.")
    detail: str | None = Field(None, max_length=500)

    @field_validator("id", "message_id", "code", "detail")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return validation.text(value, str(info.field_name))
