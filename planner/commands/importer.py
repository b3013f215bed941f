"""Validated import of recipients, subscriptions and engagement from JSON Lines.

Every line is validated before anything is written; by default one bad line imports nothing.
Writes happen in batches of a constant number of statements, never one query per recipient.

Doubtful input is refused, not guessed at (README, "Import format"): a line that is not UTF-8,
duplicate JSON keys, a second line for the same recipient id, quiet hours whose start equals their
end, the zone ``Factory`` and instants outside 1970..2200. Engagement events are keyed by
(recipient, event, instant), so importing a file twice records each event once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from planner.core import validation
from planner.core.cadence import Cadence, first_occurrence_at_or_after
from planner.core.localtime import get_zone
from planner.core.quiet_hours import QuietHours
from planner.core.status import Channel
from planner.errors import InvalidInput, PlannerError, shown
from planner.store.changes import cancel_pending_after
from planner.store.models import Recipient, Subscription
from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import ENGAGEMENT, RECIPIENTS, SUBSCRIPTIONS

#: JSON nesting allowed on a line; a recipient line needs 4 levels.
MAX_LINE_DEPTH = 32
#: Zones in the tz database that are not places: 'Factory' means "zone not set yet".
PLACEHOLDER_ZONES = frozenset({"Factory"})
NO_QUIET_HOURS = "none"
_NO_CURSOR: dict[str, Any] = {"next_at": None, "next_local_date": None, "next_wall_time": None}

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


class ImportFailed(PlannerError):
    """The import was atomic and at least one line was invalid: nothing was written."""

    def __init__(self, errors: Sequence[LineError]) -> None:
        self.errors = list(errors)
        shown = "\n".join(str(e) for e in self.errors[:20])
        more = f"\n... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(f"{len(self.errors)} invalid line(s); nothing was imported:\n{shown}{more}")


@dataclass
class ImportReport:
    lines: int = 0
    recipients_created: int = 0
    recipients_updated: int = 0
    subscriptions_created: int = 0
    subscriptions_updated: int = 0
    subscriptions_deactivated: int = 0
    deliveries_cancelled: int = 0
    engagement_events: int = 0
    engagement_already_recorded: int = 0
    #: Channel opt-outs a line left out but the recipient has: kept (see ``Importer._keep_opt_outs``).
    opt_outs_kept: int = 0
    errors: list[LineError] = field(default_factory=list)
    #: The rows of the recipients written, for planning their changes at once (not reported).
    recipient_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("errors", "recipient_ids")}
        data["invalid_lines"] = len(self.errors)
        data["errors"] = [str(e) for e in self.errors]
        return data


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


def schedule_columns(sub: SubscriptionRecord) -> dict[str, Any]:
    """The stored form of a subscription's schedule (compared on re-import to detect a change)."""
    cadence = sub.cadence
    return {
        "send_time": cadence.wall_time,
        "days": cadence.days_text(),
        "times": cadence.times_text(),
        "rrule": None if cadence.rule is None else cadence.rule.text,
        "start_date": cadence.start_date,
        "end_date": cadence.end_date,
        "snooze_until": sub.snooze_until,
    }


def _parse_quiet_hours(obj: Any) -> dict[str, QuietHours]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise InvalidInput("quiet_hours", obj, 'an object like {"sms": {"start": "21:00", "end": "08:00"}}')
    result: dict[str, QuietHours] = {}
    for name, window in obj.items():
        channel = validation.channel(name, f"quiet_hours.{name}")
        if window == NO_QUIET_HOURS:
            # Explicitly none (sends at any hour, overriding the service default): stored as an
            # empty window, which is what start == end means inside.
            result[channel.value] = QuietHours(time(0, 0), time(0, 0))
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
    _check_keys(obj, ENGAGEMENT_KEYS, "")
    recipient_id = validation.external_id(obj.get("recipient_id"), "recipient_id")
    event = validation.engagement_event(obj.get("event"))
    at = validation.instant(obj.get("at"), "at")
    kind = validation.kind(obj["kind"]) if obj.get("kind") is not None else None
    return EngagementRecord(line=line, recipient_id=recipient_id, event=event.value, at=at, kind=kind)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidInput(key, value, "each key once per object (this one repeats)")
        obj[key] = value
    return obj


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _load(text: str) -> Any:
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
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
    if _depth(obj) > MAX_LINE_DEPTH:
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


class Importer:
    """Writes validated records in batches, inside the caller's transaction."""

    def __init__(self, session: Session, now: datetime, report: ImportReport) -> None:
        self.session = session
        self.now = now
        self.report = report

    def recipients(self, records: Sequence[RecipientRecord]) -> None:
        # parse_lines refused a second line for an id; callers passing records directly get the last.
        latest = {r.external_id: r for r in records}
        records = list(latest.values())
        existing = {
            r.external_id: r
            for r in self.session.scalars(
                select(Recipient).where(Recipient.external_id.in_(list(latest)))  # type: ignore[attr-defined]
            )
        }
        new_rows = [self._recipient_row(r) for r in records if r.external_id not in existing]
        if new_rows:
            self.session.execute(insert(RECIPIENTS), new_rows)
            self.report.recipients_created += len(new_rows)
        changed_zone: set[int] = set()
        updates = []
        for record in records:
            current = existing.get(record.external_id)
            if current is None:
                continue
            row = self._recipient_row(record)
            row.pop("created_at")
            self._keep_opt_outs(current, row)
            if (current.timezone, *self._quiet_tuple(current)) != (
                record.timezone,
                *self._quiet_tuple_of(row),
            ):
                assert current.id is not None
                changed_zone.add(current.id)
            updates.append({"id": current.id, **row})
        if updates:
            self.session.execute(update(Recipient), updates)
            self.report.recipients_updated += len(updates)
        ids: dict[str, int | None] = {
            ext: rid
            for ext, rid in self.session.execute(
                select(col(Recipient.external_id), col(Recipient.id)).where(
                    col(Recipient.external_id).in_(list(latest))
                )
            )
        }
        self.report.recipient_ids.extend(i for i in ids.values() if i is not None)
        self._subscriptions(records, ids, changed_zone)

    def _subscriptions(
        self, records: Sequence[RecipientRecord], ids: dict[str, int | None], changed_zone: set[int]
    ) -> None:
        recipient_ids = [i for i in ids.values() if i is not None]
        current = {
            (s.recipient_id, s.kind, s.channel): s
            for s in self.session.scalars(
                select(Subscription).where(Subscription.recipient_id.in_(recipient_ids))  # type: ignore[attr-defined]
            )
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        rescheduled: list[int] = []
        wanted: set[tuple[int, str, str]] = set()
        for record in records:
            recipient_id = ids[record.external_id]
            assert recipient_id is not None
            for sub in record.subscriptions:
                key = (recipient_id, sub.kind, sub.channel)
                wanted.add(key)
                cursor = self._cursor(sub, record.timezone) if sub.active else _NO_CURSOR
                schedule = schedule_columns(sub)
                existing = current.get(key)
                if existing is None:
                    inserts.append(
                        {
                            "recipient_id": recipient_id,
                            "kind": sub.kind,
                            "channel": sub.channel,
                            **schedule,
                            "digest": sub.digest,
                            "active": sub.active,
                            **cursor,
                            "created_at": self.now,
                            "updated_at": self.now,
                        }
                    )
                    continue
                schedule_changed = (
                    any(getattr(existing, name) != value for name, value in schedule.items())
                    or existing.active != sub.active
                    or recipient_id in changed_zone
                )
                assert existing.id is not None
                if not schedule_changed:
                    if existing.digest != sub.digest:
                        # Not a schedule change: planned deliveries stay; the flag is read at the send.
                        updates.append({"id": existing.id, "digest": sub.digest, "updated_at": self.now})
                    continue
                rescheduled.append(existing.id)
                updates.append(
                    {
                        "id": existing.id,
                        **schedule,
                        "digest": sub.digest,
                        "active": sub.active,
                        **cursor,
                        "updated_at": self.now,
                    }
                )
        self.report.subscriptions_updated += len(updates)
        # A recipient line is the full desired state: subscriptions it no longer lists stop.
        for key, existing in current.items():
            if key not in wanted and existing.active:
                assert existing.id is not None
                rescheduled.append(existing.id)
                updates.append(
                    {
                        "id": existing.id,
                        "active": False,
                        **_NO_CURSOR,
                        "updated_at": self.now,
                    }
                )
                self.report.subscriptions_deactivated += 1
        if inserts:
            self.session.execute(insert(SUBSCRIPTIONS), inserts)
            self.report.subscriptions_created += len(inserts)
        if updates:
            self.session.execute(update(Subscription), updates)
        self.report.deliveries_cancelled += len(cancel_pending_after(self.session, rescheduled, self.now))

    def engagement(self, records: Sequence[EngagementRecord]) -> list[LineError]:
        """Insert engagement events; returns errors for unknown recipients (nothing of theirs is written)."""
        wanted = {r.recipient_id for r in records}
        ids: dict[str, int | None] = {
            ext: rid
            for ext, rid in self.session.execute(
                select(col(Recipient.external_id), col(Recipient.id)).where(
                    col(Recipient.external_id).in_(list(wanted))
                )
            )
        }
        errors = [
            LineError(r.line, "recipient_id", f"{r.recipient_id!r} is not a known recipient")
            for r in records
            if r.recipient_id not in ids
        ]
        rows = [
            {
                "recipient_id": ids[r.recipient_id],
                "event": r.event,
                "kind": r.kind,
                "occurred_at": r.at,
                "created_at": self.now,
            }
            for r in records
            if r.recipient_id in ids
        ]
        if rows:
            # (recipient, event, instant) is the natural key: an event already recorded, by an
            # earlier import or a webhook, is counted as such and not stored twice.
            inserted = self.session.execute(insert_ignoring_duplicates(self.session, ENGAGEMENT, rows))
            added = len(inserted.all())
            self.report.engagement_events += added
            self.report.engagement_already_recorded += len(rows) - added
        return errors

    def _cursor(self, sub: SubscriptionRecord, tz: str) -> dict[str, Any]:
        """The first occurrence from now: a changed schedule never replans an occurrence before now, so
        a sent (local date, wall time) is never sent again (see planner.store.changes)."""
        occurrence = first_occurrence_at_or_after(sub.cadence, tz, self.now)
        if occurrence is None:
            return _NO_CURSOR
        return {
            "next_at": occurrence.instant,
            "next_local_date": occurrence.local_date,
            "next_wall_time": occurrence.wall_time,
        }

    def _recipient_row(self, r: RecipientRecord) -> dict[str, Any]:
        email_qh = r.quiet_hours.get("email")
        sms_qh = r.quiet_hours.get("sms")
        return {
            "external_id": r.external_id,
            "timezone": r.timezone,
            "email": r.email,
            "phone": r.phone,
            "email_quiet_start": email_qh.start if email_qh else None,
            "email_quiet_end": email_qh.end if email_qh else None,
            "sms_quiet_start": sms_qh.start if sms_qh else None,
            "sms_quiet_end": sms_qh.end if sms_qh else None,
            "email_opt_out": "email" in r.opt_out,
            "sms_opt_out": "sms" in r.opt_out,
            "locale": r.locale,
            "attributes": r.attributes,
            "created_at": self.now,
            "updated_at": self.now,
        }

    def _keep_opt_outs(self, current: Recipient, row: dict[str, Any]) -> None:
        """A line may add a channel opt-out, never lift one: the opt-out may be the recipient's own
        (an SMS STOP, a one-click unsubscribe, a complaint), and a nightly re-import of a CRM that
        does not know of it must not undo it. Lifting is the preferences route's (or a START)."""
        for channel in ("email", "sms"):
            column = f"{channel}_opt_out"
            if getattr(current, column) and not row[column]:
                row[column] = True
                self.report.opt_outs_kept += 1

    @staticmethod
    def _quiet_tuple(r: Recipient) -> tuple[time | None, ...]:
        return (r.email_quiet_start, r.email_quiet_end, r.sms_quiet_start, r.sms_quiet_end)

    @staticmethod
    def _quiet_tuple_of(row: dict[str, Any]) -> tuple[time | None, ...]:
        return (
            row["email_quiet_start"],
            row["email_quiet_end"],
            row["sms_quiet_start"],
            row["sms_quiet_end"],
        )


def import_lines(
    factory: sessionmaker[Session],
    lines: Iterable[str | bytes],
    now: datetime,
    *,
    skip_invalid: bool = False,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    has_template: Callable[[str, str], bool] | None = None,
) -> ImportReport:
    """Validate every line, then write them in batches inside one transaction.

    Atomic by default: any invalid line (including an engagement event for an unknown recipient)
    raises :class:`ImportFailed` and nothing is written. With ``skip_invalid`` the good lines are
    imported and the bad ones are listed in the report. ``has_template(kind, channel)``, when
    given, refuses a subscription whose deliveries could never be rendered.
    """
    report = ImportReport()
    records: list[Record] = []
    for item in parse_lines(lines):
        if isinstance(item, LineError):
            report.errors.append(item)
            continue
        error = _template_error(item, has_template) if has_template is not None else None
        if error is not None:
            report.errors.append(error)
        else:
            records.append(item)
    report.lines = len(records) + len(report.errors)
    if report.errors and not skip_invalid:
        raise ImportFailed(report.errors)
    with factory() as session, session.begin():
        importer = Importer(session, now, report)
        recipients = [r for r in records if isinstance(r, RecipientRecord)]
        for start in range(0, len(recipients), batch_size):
            batch = recipients[start : start + batch_size]
            importer.recipients(batch)
            if progress:
                progress(len(batch))
        engagement = [r for r in records if isinstance(r, EngagementRecord)]
        for start in range(0, len(engagement), batch_size):
            batch_e = engagement[start : start + batch_size]
            unknown = importer.engagement(batch_e)
            if unknown and not skip_invalid:
                raise ImportFailed(unknown)  # leaving the block rolls everything back
            report.errors.extend(unknown)
            if progress:
                progress(len(batch_e))
    report.errors.sort(key=lambda e: e.line)
    return report


def _template_error(item: Record, has_template: Callable[[str, str], bool]) -> LineError | None:
    if not isinstance(item, RecipientRecord):
        return None
    for i, sub in enumerate(item.subscriptions):
        if not has_template(sub.kind, sub.channel):
            message = (
                f"{shown(sub.kind)} has no {sub.channel} template; expected a kind with one "
                "(`planner templates check` lists them)"
            )
            return LineError(item.line, f"subscriptions[{i}].kind", message)
    return None


def import_file(factory: sessionmaker[Session], path: Path, now: datetime, **kwargs: Any) -> ImportReport:
    # Bytes, decoded line by line: a bad byte is an error on its line, not a traceback.
    with path.open("rb") as handle:
        return import_lines(factory, handle, now, **kwargs)
