"""Writing imported records: recipients, their subscriptions and engagement events, in batches.

Writes happen inside the caller's transaction, a constant number of statements per batch, never
one query per recipient. A recipient line is the full desired state: a changed schedule (zone,
quiet hours, time, days, active) recomputes the subscription's cursor from now and cancels its
pending future deliveries (:mod:`planner.store.changes`); subscriptions a line no longer lists stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from planner.core.cadence import first_occurrence_at_or_after
from planner.core.import_records import EngagementRecord, LineError, RecipientRecord, SubscriptionRecord
from planner.store.changes import cancel_pending_after
from planner.store.db import Session
from planner.store.engagement_writes import record_engagement_batch
from planner.store.models import Recipient, Subscription
from planner.store.recipients import (
    ids_by_external_id,
    insert_recipients,
    recipients_by_external_id,
    update_recipients,
)
from planner.store.subscriptions import insert_subscriptions, subscriptions_of, update_subscriptions

_NO_CURSOR: dict[str, Any] = {"next_at": None, "next_local_date": None, "next_wall_time": None}


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


def schedule_columns(sub: SubscriptionRecord) -> dict[str, Any]:
    """The stored form of a subscription's schedule (compared on re-import to detect a change)."""
    cadence = sub.cadence
    learned = cadence.learned
    return {
        "send_time": cadence.wall_time,
        "days": cadence.days_text(),
        "times": cadence.times_text(),
        "auto_until": None if learned is None else learned.end,
        "auto_default": None if learned is None else learned.default,
        "rrule": None if cadence.rule is None else cadence.rule.text,
        "start_date": cadence.start_date,
        "end_date": cadence.end_date,
        "snooze_until": sub.snooze_until,
    }


@dataclass
class _SubscriptionWrites:
    """One batch's subscription rows to insert and update, and the ids whose schedule changed."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    rescheduled: list[int] = field(default_factory=list)


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
        existing = recipients_by_external_id(self.session, latest)
        new_rows = [self._recipient_row(r) for r in records if r.external_id not in existing]
        insert_recipients(self.session, new_rows)
        self.report.recipients_created += len(new_rows)
        updates, changed_zone = self._recipient_updates(records, existing)
        update_recipients(self.session, updates)
        self.report.recipients_updated += len(updates)
        ids = ids_by_external_id(self.session, latest)
        self.report.recipient_ids.extend(ids.values())
        self._subscriptions(records, ids, changed_zone)

    def _recipient_updates(
        self, records: Sequence[RecipientRecord], existing: dict[str, Recipient]
    ) -> tuple[list[dict[str, Any]], set[int]]:
        """The update rows of the records' recipients that exist already, and the ids of those
        whose zone or quiet hours changed (their subscriptions are rescheduled)."""
        changed_zone: set[int] = set()
        updates = []
        for record in records:
            current = existing.get(record.external_id)
            if current is None:
                continue
            assert current.id is not None
            row = self._recipient_row(record)
            row.pop("created_at")
            self._keep_opt_outs(current, row)
            if (current.timezone, *_quiet_of(current)) != (record.timezone, *_quiet_of_row(row)):
                changed_zone.add(current.id)
            updates.append({"id": current.id, **row})
        return updates, changed_zone

    def _subscriptions(
        self, records: Sequence[RecipientRecord], ids: dict[str, int], changed_zone: set[int]
    ) -> None:
        current = {
            (s.recipient_id, s.kind, s.channel): s for s in subscriptions_of(self.session, ids.values())
        }
        writes = _SubscriptionWrites()
        listed: set[tuple[int, str, str]] = set()
        for record in records:
            recipient_id = ids[record.external_id]
            for sub in record.subscriptions:
                key = (recipient_id, sub.kind, sub.channel)
                listed.add(key)
                moved = recipient_id in changed_zone
                self._subscription_write(writes, recipient_id, record.timezone, sub, current.get(key), moved)
        self.report.subscriptions_updated += len(writes.updates)
        self._stop_unlisted(writes, current, listed)
        insert_subscriptions(self.session, writes.inserts)
        self.report.subscriptions_created += len(writes.inserts)
        update_subscriptions(self.session, writes.updates)
        cancelled = cancel_pending_after(self.session, writes.rescheduled, self.now)
        self.report.deliveries_cancelled += len(cancelled)

    def _subscription_write(
        self,
        writes: _SubscriptionWrites,
        recipient_id: int,
        timezone: str,
        sub: SubscriptionRecord,
        existing: Subscription | None,
        zone_changed: bool,
    ) -> None:
        """What one listed subscription needs: an insert, a rescheduling update, a digest flag, or nothing."""
        cursor = self._cursor(sub, timezone) if sub.active else _NO_CURSOR
        schedule = schedule_columns(sub)
        if existing is None:
            writes.inserts.append(
                {
                    "recipient_id": recipient_id,
                    "kind": sub.kind,
                    "channel": sub.channel,
                    **schedule,
                    "digest": sub.digest,
                    "fallback": _fallback_json(sub),
                    "active": sub.active,
                    **cursor,
                    "created_at": self.now,
                    "updated_at": self.now,
                }
            )
            return
        assert existing.id is not None
        schedule_changed = (
            any(getattr(existing, name) != value for name, value in schedule.items())
            or existing.active != sub.active
            or zone_changed
        )
        fallback = _fallback_json(sub)
        if not schedule_changed:
            if (existing.digest, existing.fallback) != (sub.digest, fallback):
                # Not a schedule change: planned deliveries stay; the digest flag is read at the
                # send, the fallback rule when the delivery fails.
                writes.updates.append(
                    {"id": existing.id, "digest": sub.digest, "fallback": fallback, "updated_at": self.now}
                )
            return
        writes.rescheduled.append(existing.id)
        update = {
            "id": existing.id, **schedule, "digest": sub.digest, "fallback": fallback, "active": sub.active,
            **cursor,
        }  # fmt: skip
        writes.updates.append(update | {"updated_at": self.now})

    def _stop_unlisted(
        self,
        writes: _SubscriptionWrites,
        current: dict[tuple[int, str, str], Subscription],
        listed: set[tuple[int, str, str]],
    ) -> None:
        """A recipient line is the full desired state: subscriptions it no longer lists stop."""
        for key, existing in current.items():
            if key not in listed and existing.active:
                assert existing.id is not None
                writes.rescheduled.append(existing.id)
                writes.updates.append(
                    {"id": existing.id, "active": False, **_NO_CURSOR, "updated_at": self.now}
                )
                self.report.subscriptions_deactivated += 1

    def engagement(self, records: Sequence[EngagementRecord]) -> list[LineError]:
        """Insert engagement events; returns errors for unknown recipients (nothing of theirs is written)."""
        ids = ids_by_external_id(self.session, {r.recipient_id for r in records})
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
            # An event already recorded, by an earlier import or a webhook, is counted as such.
            added = record_engagement_batch(self.session, rows)
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


def _fallback_json(sub: SubscriptionRecord) -> dict[str, Any] | None:
    return None if sub.fallback is None else sub.fallback.as_json()


def _quiet_of(r: Recipient) -> tuple[time | None, ...]:
    return (r.email_quiet_start, r.email_quiet_end, r.sms_quiet_start, r.sms_quiet_end)


def _quiet_of_row(row: dict[str, Any]) -> tuple[time | None, ...]:
    return (row["email_quiet_start"], row["email_quiet_end"], row["sms_quiet_start"], row["sms_quiet_end"])
