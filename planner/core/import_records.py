"""The import format: JSON Lines of recipients (with their subscriptions) and engagement events,
parsed and validated into records. Pure: nothing here reads or writes the database
(:mod:`planner.commands.import_writer` writes the records).

Doubtful input is refused, not guessed at (README, "Import format"): a line that is not UTF-8,
text that breaks the text rule (NUL, lone surrogates: :func:`planner.core.validation.text`),
duplicate JSON keys, a second line for the same recipient id, quiet hours whose start equals their
end, the zone ``Factory`` and instants outside 1970..2200.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from planner.core import validation
from planner.core.cadence import Cadence
from planner.core.json_objects import unique_keys
from planner.core.localtime import get_zone
from planner.core.quiet_hours import NO_QUIET_HOURS, QuietHours
from planner.core.status import Channel
from planner.core.template_data import nesting_depth
from planner.errors import InvalidInput, shown

#: JSON nesting allowed on a line; a recipient line needs 4 levels.
MAX_LINE_DEPTH = 32
#: Zones in the tz database that are not places: 'Factory' means "zone not set yet".
PLACEHOLDER_ZONES = frozenset({"Factory"})
#: What a line writes for "no quiet hours on this channel" (overriding the service default).
NONE_WRITTEN = "none"

RECIPIENT_KEYS = {
    "type",
    "id",
    "timezone",
    "email",
    "phone",
    "quiet_hours",
    "opt_out",
    "subscriptions",
    "locale",
    "attributes",
}
SUBSCRIPTION_KEYS = {
    "kind",
    "channel",
    "at",
    "days",
    "rrule",
    "start_date",
    "end_date",
    "snooze_until",
    "digest",
    "active",
}
ENGAGEMENT_KEYS = {"type", "recipient_id", "event", "at", "kind"}


@dataclass(frozen=True)
class SubscriptionRecord:
    kind: str
    channel: str
    cadence: Cadence
    active: bool = True
    snooze_until: date | None = None
    #: Collects the recipient's events of the kind into each occurrence (planner.store.digests).
    digest: bool = False


@dataclass(frozen=True)
class RecipientRecord:
    line: int
    external_id: str
    timezone: str
    email: str | None
    phone: str | None
    quiet_hours: dict[str, QuietHours]
    opt_out: frozenset[str]
    subscriptions: tuple[SubscriptionRecord, ...]
    locale: str | None = None
    attributes: dict[str, Any] | None = None


@dataclass(frozen=True)
class EngagementRecord:
    line: int
    recipient_id: str
    event: str
    at: datetime
    kind: str | None


Record = RecipientRecord | EngagementRecord


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str
    #: The offending value (as shown, cut short) and what was expected, when a field was wrong.
    value: str | None = None
    expected: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "field": self.field,
            "value": self.value,
            "expected": self.expected,
            "message": self.message,
        }

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


def _check_keys(obj: dict[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InvalidInput(f"{prefix}{unknown[0]}", obj[unknown[0]], f"only the fields {sorted(allowed)}")


def _parse_subscription(obj: Any, index: int) -> SubscriptionRecord:
    prefix = f"subscriptions[{index}]."
    if not isinstance(obj, dict):
        raise InvalidInput(f"subscriptions[{index}]", obj, "an object with kind, channel, at, days")
    _check_keys(obj, SUBSCRIPTION_KEYS, prefix)
    kind = validation.kind(obj.get("kind"), prefix + "kind")
    channel = validation.channel(obj.get("channel"), prefix + "channel")
    if "rrule" in obj and "days" in obj:
        raise InvalidInput(prefix + "rrule", obj["rrule"], "either days or rrule, not both")
    try:
        dates = {name: _optional_date(obj, name) for name in ("start_date", "end_date", "snooze_until")}
        cadence = Cadence.parse(
            obj.get("at"),
            obj.get("days", "daily"),
            rrule=obj.get("rrule"),
            start_date=dates["start_date"],
            end_date=dates["end_date"],
        )
    except InvalidInput as exc:
        raise InvalidInput(prefix + exc.field, exc.value, exc.expected) from None
    active = obj.get("active", True)
    if not isinstance(active, bool):
        raise InvalidInput(prefix + "active", active, "true or false")
    digest = obj.get("digest", False)
    if not isinstance(digest, bool):
        raise InvalidInput(prefix + "digest", digest, "true or false")
    return SubscriptionRecord(
        kind=kind,
        channel=channel.value,
        cadence=cadence,
        active=active,
        snooze_until=dates["snooze_until"],
        digest=digest,
    )


def _optional_date(obj: dict[str, Any], name: str) -> date | None:
    value = obj.get(name)
    return None if value is None else validation.local_date(value, name)


def _parse_quiet_hours(obj: Any) -> dict[str, QuietHours]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise InvalidInput("quiet_hours", obj, 'an object like {"sms": {"start": "21:00", "end": "08:00"}}')
    result: dict[str, QuietHours] = {}
    for name, window in obj.items():
        channel = validation.channel(name, f"quiet_hours.{name}")
        if window == NONE_WRITTEN:
            # Explicitly none (sends at any hour, overriding the service default): stored as an
            # empty window, which is what start == end means inside.
            result[channel.value] = NO_QUIET_HOURS
            continue
        if not isinstance(window, dict) or set(window) != {"start", "end"}:
            raise InvalidInput(
                f"quiet_hours.{name}", window, 'an object {"start": "HH:MM", "end": "HH:MM"} or "none"'
            )
        parsed = QuietHours.parse(window["start"], window["end"], f"quiet_hours.{name}")
        if parsed.is_empty:
            raise InvalidInput(
                f"quiet_hours.{name}",
                f"{window['start']}-{window['end']}",
                'a window whose start and end differ (write "none" for no quiet hours)',
            )
        result[channel.value] = parsed
    return result


def parse_recipient(obj: dict[str, Any], line: int) -> RecipientRecord:
    validation.text(obj, "")
    _check_keys(obj, RECIPIENT_KEYS, "")
    external_id = validation.external_id(obj.get("id"), "id")
    tz_name = obj.get("timezone")
    if not isinstance(tz_name, str):
        raise InvalidInput("timezone", tz_name, "an IANA time zone name such as 'America/New_York'")
    if tz_name in PLACEHOLDER_ZONES:
        raise InvalidInput("timezone", tz_name, "the zone of a place ('Factory' stands for 'not set')")
    get_zone(tz_name)
    email = validation.email(obj["email"]) if obj.get("email") is not None else None
    phone = validation.phone(obj["phone"]) if obj.get("phone") is not None else None
    opt_out_raw = obj.get("opt_out", [])
    if not isinstance(opt_out_raw, list):
        raise InvalidInput("opt_out", opt_out_raw, "a list of channels, e.g. ['sms']")
    opt_out = frozenset(validation.channel(c, "opt_out").value for c in opt_out_raw)
    subs_raw = obj.get("subscriptions", [])
    if not isinstance(subs_raw, list):
        raise InvalidInput("subscriptions", subs_raw, "a list of subscription objects")
    subscriptions = tuple(_parse_subscription(s, i) for i, s in enumerate(subs_raw))
    seen: set[tuple[str, str]] = set()
    for i, sub in enumerate(subscriptions):
        if (sub.kind, sub.channel) in seen:
            raise InvalidInput(
                f"subscriptions[{i}]", f"{sub.kind}/{sub.channel}", "one subscription per kind and channel"
            )
        seen.add((sub.kind, sub.channel))
        if sub.channel == Channel.email and email is None:
            raise InvalidInput(f"subscriptions[{i}].channel", "email", "an email address on the recipient")
        if sub.channel == Channel.sms and phone is None:
            raise InvalidInput(f"subscriptions[{i}].channel", "sms", "a phone number on the recipient")
    return RecipientRecord(
        line=line,
        external_id=external_id,
        timezone=tz_name,
        email=email,
        phone=phone,
        quiet_hours=_parse_quiet_hours(obj.get("quiet_hours")),
        opt_out=opt_out,
        subscriptions=subscriptions,
        locale=validation.locale(obj["locale"]) if obj.get("locale") is not None else None,
        attributes=_parse_attributes(obj.get("attributes")),
    )


def _parse_attributes(value: Any) -> dict[str, Any] | None:
    """Custom template attributes; an empty object is none (stored as NULL, shown as {})."""
    return None if value is None else validation.attributes(value) or None


def parse_engagement(obj: dict[str, Any], line: int) -> EngagementRecord:
    validation.text(obj, "")
    _check_keys(obj, ENGAGEMENT_KEYS, "")
    recipient_id = validation.external_id(obj.get("recipient_id"), "recipient_id")
    event = validation.engagement_event(obj.get("event"))
    at = validation.instant(obj.get("at"), "at")
    kind = validation.kind(obj["kind"]) if obj.get("kind") is not None else None
    return EngagementRecord(line=line, recipient_id=recipient_id, event=event.value, at=at, kind=kind)


def _load(text: str) -> Any:
    try:
        obj = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput("json", text.strip(), f"a JSON object ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise InvalidInput(
            "json", text.strip(), f"a JSON object nested at most {MAX_LINE_DEPTH} deep"
        ) from None
    except InvalidInput:
        raise
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise InvalidInput("json", text.strip(), f"a JSON object of sane values ({exc})") from None
    if nesting_depth(obj, MAX_LINE_DEPTH) > MAX_LINE_DEPTH:
        raise InvalidInput("json", text.strip(), f"a JSON object nested at most {MAX_LINE_DEPTH} deep")
    return obj


def parse_line(text: str, line: int) -> Record | None:
    """One JSON Lines entry to a record; blank lines are ignored. Raises ``InvalidInput``."""
    if not text.strip():
        return None
    obj = _load(text)
    if not isinstance(obj, dict):
        raise InvalidInput("json", text.strip(), "a JSON object with a 'type' field")
    kind = obj.get("type")
    if kind == "recipient":
        return parse_recipient(obj, line)
    if kind == "engagement":
        return parse_engagement(obj, line)
    raise InvalidInput("type", kind, "'recipient' or 'engagement'")


def _decode(raw: str | bytes, number: int) -> str:
    if isinstance(raw, str):
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "line", raw[exc.start : exc.start + 1], f"UTF-8 text (byte {exc.start + 1} is not UTF-8)"
        ) from None
    return text.removeprefix("\ufeff") if number == 1 else text


def parse_lines(lines: Iterable[str | bytes]) -> Iterator[Record | LineError]:
    """Records and line errors; a second line for the same recipient id is an error."""
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            record = parse_line(_decode(raw, number), number)
        except InvalidInput as exc:
            message = f"{shown(exc.value)} is invalid; expected {exc.expected}"
            yield LineError(number, exc.field, message, shown(exc.value), exc.expected)
            continue
        if isinstance(record, RecipientRecord):
            seen = first_line.setdefault(record.external_id, number)
            if seen != number:
                message = f"{shown(record.external_id)} is already on line {seen}; expected one line per id"
                yield LineError(number, "id", message)
                continue
        if record is not None:
            yield record
