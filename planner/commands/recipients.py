"""The management API's recipients: upsert, patch, view, erase, and one subscription at a time.

Every write goes through the importer's own parsing (:func:`~planner.core.import_records.parse_recipient`)
and writer (:class:`~planner.commands.import_writer.Importer`): the API and ``planner import`` accept
exactly the same documents and apply the same schedule-change rule (pending future deliveries of a
changed subscription are cancelled and planned again). A change is planned at once when its next
occurrence falls inside the window the last planner run already covered (:func:`plan_changes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from redis import RedisError

from planner.app import App, build_runner
from planner.commands.import_writer import Importer, ImportReport
from planner.core import validation
from planner.core.import_records import (
    RECIPIENT_KEYS,
    SUBSCRIPTION_KEYS,
    parse_recipient,
    required_templates,
)
from planner.core.localtime import hhmm
from planner.core.unsubscribe import UnsubscribeTarget
from planner.core.webhook_events import (
    RECIPIENT_OPTED_IN,
    RECIPIENT_OPTED_OUT,
    RECIPIENT_UNSUBSCRIBED,
    public_recipient_id,
    recipient_event,
)
from planner.errors import InvalidInput, NotFound
from planner.readmodels.recipients import preferences_of
from planner.readmodels.simulate import simulate_recipient, to_json_rows
from planner.store.audit import record_audit
from planner.store.chunks import cadence_of
from planner.store.db import Session, transaction_retried_once
from planner.store.models import Recipient, Subscription
from planner.store.preferences import set_channel_opt_out, set_kind_opt_out
from planner.store.queries import recipient_by_external_id
from planner.store.recipients import erase_recipient, recipient_exists
from planner.store.subscriptions import subscriptions_of
from planner.store.webhook_endpoints import wanted_types
from planner.store.webhooks import emit, external_ids

log = structlog.get_logger("planner.recipients")

#: What PATCH may change; subscriptions have routes of their own.
PATCHABLE = RECIPIENT_KEYS - {"type", "id", "subscriptions"}
RECIPIENT_DELETED = "recipient_deleted"
NEXT_SENDS = 5
#: Simulated days ahead for the next sends: five weeks finds five sends of a weekly subscription.
_LOOKAHEAD_DAYS = 35


def document(session: Session, recipient: Recipient) -> dict[str, Any]:
    """The recipient as an import line (without ``type``): what PUT takes and GET shows."""
    quiet: dict[str, Any] = {}
    for channel in ("email", "sms"):
        window = recipient.own_quiet_hours(channel)
        if window is not None:
            quiet[channel] = (
                "none"
                if window.is_empty
                else {"start": window.start.strftime("%H:%M"), "end": window.end.strftime("%H:%M")}
            )
    assert recipient.id is not None
    subs = subscriptions_of(session, [recipient.id])
    return {
        "id": recipient.external_id,
        "timezone": recipient.timezone,
        "email": recipient.email,
        "phone": recipient.phone,
        "quiet_hours": quiet,
        "opt_out": [c for c in ("email", "sms") if getattr(recipient, f"{c}_opt_out")],
        "locale": recipient.locale,
        "attributes": recipient.attributes or {},
        "subscriptions": [subscription_document(s) for s in subs if s.active],
    }


def subscription_document(sub: Subscription) -> dict[str, Any]:
    """A subscription in the shape an import line or a PUT takes (what you read you can write back)."""
    cadence = cadence_of(sub)
    schedule: dict[str, Any] = {
        "at": [hhmm(t) for t in cadence.wall_times] if cadence.several_a_day else hhmm(cadence.wall_time)
    }
    if cadence.learned is not None:
        schedule["at"] = cadence.learned.document()
    if cadence.rule is not None:
        schedule["rrule"] = cadence.rule.text
    else:
        schedule["days"] = cadence.days_text()
    dates = {"start_date": cadence.start_date, "end_date": cadence.end_date, "snooze_until": sub.snooze_until}
    schedule |= {name: value.isoformat() for name, value in dates.items() if value is not None}
    if sub.digest:
        schedule["digest"] = True
    if sub.fallback:
        schedule["fallback"] = sub.fallback
    return {"kind": sub.kind, "channel": sub.channel, **schedule, "active": sub.active}


def _write(app: App, body: dict[str, Any], now: datetime) -> ImportReport:
    record = parse_recipient(body, line=1)
    for kind, channel, field in required_templates(record):
        app.templates.require(kind, channel, field)

    def write(session: Session) -> ImportReport:
        report = ImportReport(lines=1)
        Importer(session, now, report).recipients([record])
        return report

    # Two requests creating the same recipient: the one that loses the race writes again, as an update.
    report = transaction_retried_once(app.sessions, write)
    plan_changes(app, report.recipient_ids, now)
    return report


def put_recipient(
    app: App, external_id: str, body: dict[str, Any], now: datetime
) -> tuple[bool, dict[str, Any]]:
    """Create or replace (the body is the full desired state, as an import line); True if created."""
    validation.external_id(external_id, "id")
    if "id" in body and body["id"] != external_id:
        raise InvalidInput("id", body["id"], f"the id of the path ({external_id!r}) or no id")
    report = _write(app, {k: v for k, v in body.items() if k != "type"} | {"id": external_id}, now)
    return report.recipients_created > 0, view(app, external_id, now)


def patch_recipient(app: App, external_id: str, changes: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Change only the fields given (zone, email, phone, quiet hours, opt-outs, locale, attributes:
    ``attributes`` replaces the whole object)."""
    unknown = sorted(set(changes) - PATCHABLE)
    if unknown:
        raise InvalidInput(unknown[0], changes[unknown[0]], f"only the fields {sorted(PATCHABLE)}")
    with app.sessions() as session:
        current = document(session, recipient_by_external_id(session, external_id))
    _write(app, current | changes, now)
    return view(app, external_id, now)


def put_subscription(
    app: App, external_id: str, kind: str, channel: str, body: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Create or change one subscription (``at``, ``days``, ``active``), as a re-import would."""
    allowed = SUBSCRIPTION_KEYS - {"kind", "channel"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], body[unknown[0]], f"only the fields {sorted(allowed)}")
    validation.kind(kind, "kind")
    validation.channel(channel, "channel")
    with app.sessions() as session:
        current = document(session, recipient_by_external_id(session, external_id))
    others = [s for s in current["subscriptions"] if (s["kind"], s["channel"]) != (kind, channel)]
    current["subscriptions"] = [*others, {**body, "kind": kind, "channel": channel}]
    prefix = f"subscriptions[{len(others)}]."
    try:
        _write(app, current, now)
    except InvalidInput as exc:
        # Named as the body's field (``at``), not as the import line's (``subscriptions[2].at``).
        if exc.field.startswith(prefix):
            raise InvalidInput(exc.field.removeprefix(prefix), exc.value, exc.expected) from None
        raise
    return view(app, external_id, now)


def patch_subscription(
    app: App, external_id: str, kind: str, channel: str, changes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Change some fields of an existing subscription (``snooze_until``, ``at``, ...); a field set to
    null goes back to its default (null ``snooze_until`` ends a snooze). Then as PUT: a changed
    schedule cancels pending future deliveries and plans them again."""
    validation.kind(kind, "kind")
    validation.channel(channel, "channel")
    allowed = SUBSCRIPTION_KEYS - {"kind", "channel"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], changes[unknown[0]], f"only the fields {sorted(allowed)}")
    with app.sessions() as session:
        current = document(session, recipient_by_external_id(session, external_id))
    found = [s for s in current["subscriptions"] if (s["kind"], s["channel"]) == (kind, channel)]
    if not found:
        raise NotFound("subscription", f"{external_id}/{kind}/{channel}")
    merged = {k: v for k, v in {**found[0], **changes}.items() if v is not None}
    if "rrule" in changes and changes["rrule"] is not None:
        merged.pop("days", None)
    if "days" in changes and changes["days"] is not None:
        merged.pop("rrule", None)
    body = {k: v for k, v in merged.items() if k not in ("kind", "channel")}
    return put_subscription(app, external_id, kind, channel, body, now)


def delete_subscription(app: App, external_id: str, kind: str, channel: str, now: datetime) -> dict[str, Any]:
    """Stop one subscription; its pending future deliveries are cancelled."""
    with app.sessions() as session:
        current = document(session, recipient_by_external_id(session, external_id))
    current["subscriptions"] = [
        s for s in current["subscriptions"] if (s["kind"], s["channel"]) != (kind, channel)
    ]
    _write(app, current, now)
    return view(app, external_id, now)


def view(app: App, external_id: str, now: datetime) -> dict[str, Any]:
    """The recipient, its preferences and its next sends (local time, UTC, DST and quiet-hours notes)."""
    with app.sessions() as session:
        recipient = recipient_by_external_id(session, external_id)
        data = document(session, recipient)
    sends, _ = simulate_recipient(app, external_id, None, _LOOKAHEAD_DAYS)
    upcoming = [s for s in sends if s.send_at >= now][:NEXT_SENDS]
    data["preferences"] = preferences_of(recipient)
    data["next_sends"] = to_json_rows(upcoming)
    return data


def set_preference(
    app: App, external_id: str, channel: str, kind: str | None, opted_out: bool, now: datetime
) -> dict[str, Any]:
    """Opt out of (or back into) a channel, or one kind on it. Critical kinds cannot be opted out of."""
    validation.channel(channel, "channel")
    if kind is not None:
        validation.kind(kind, "kind")
        if opted_out and app.policy.is_critical(kind):
            raise InvalidInput(
                "kind", kind, "a kind that is not critical: PLANNER_CRITICAL_KINDS cannot be opted out of"
            )
    with app.sessions() as session, session.begin():
        recipient = recipient_by_external_id(session, external_id)
        assert recipient.id is not None
        if kind is None:
            changed = set_channel_opt_out(session, recipient.id, channel, opted_out, now)
        else:
            changed = set_kind_opt_out(session, recipient.id, kind, channel, opted_out, now)
        if changed:
            event_type = RECIPIENT_OPTED_OUT if opted_out else RECIPIENT_OPTED_IN
            _emit(session, event_type, now, external_id, channel, kind=kind, source="preferences")
    scope = f"kind:{kind}" if kind else f"channel:{channel}"
    log.info(
        "preference set", scope=scope, opted_out=opted_out, outcome="changed" if changed else "unchanged"
    )
    with app.sessions() as session:
        return {
            "changed": changed,
            "preferences": preferences_of(recipient_by_external_id(session, external_id)),
        }


def unsubscribe(app: App, target: UnsubscribeTarget, now: datetime) -> bool:
    """A one-click unsubscribe: the kind on the channel, for the recipient the link was made for."""
    if app.policy.is_critical(target.kind):
        raise InvalidInput(
            "kind", target.kind, "a kind that is not critical (critical kinds cannot be opted out of)"
        )
    return _by_link(app, target, now, opted_out=True)


def resubscribe(app: App, target: UnsubscribeTarget, now: datetime) -> bool:
    """The person changed their mind on the unsubscribe link's page: the kind is sent again."""
    return _by_link(app, target, now, opted_out=False)


def _by_link(app: App, target: UnsubscribeTarget, now: datetime, *, opted_out: bool) -> bool:
    action = "unsubscribed" if opted_out else "resubscribed"
    with app.sessions() as session, session.begin():
        if not recipient_exists(session, target.recipient_id):
            raise NotFound("recipient", target.recipient_id)
        changed = set_kind_opt_out(session, target.recipient_id, target.kind, target.channel, opted_out, now)
        if changed:
            external_id = external_ids(session, [target.recipient_id]).get(target.recipient_id)
            event_type = RECIPIENT_UNSUBSCRIBED if opted_out else RECIPIENT_OPTED_IN
            _emit(
                session, event_type, now, external_id, target.channel, kind=target.kind, source="one_click"
            )  # fmt: skip
        record_audit(
            session,
            now,
            "unsubscribe-link",
            action,
            f"recipient:{target.recipient_id}/{target.kind}/{target.channel}",
        )
    log.info(action, kind=target.kind, channel=target.channel, outcome="changed" if changed else "unchanged")
    return changed


def _emit(
    session: Session, event_type: str, now: datetime, external_id: str | None, channel: str, **data: Any
) -> None:
    """A ``recipient.*`` webhook event, in the change's transaction, when an endpoint wants it."""
    if event_type in wanted_types(session):
        event = recipient_event(event_type, now, public_recipient_id(external_id), channel, **data)
        emit(session, [event], now)


def erase(app: App, external_id: str, now: datetime) -> dict[str, Any]:
    """Erasure: personal data removed, pending deliveries cancelled (``recipient_deleted``), the
    delivery history kept for counts but no longer linked to a person."""
    validation.external_id(external_id, "id")
    with app.sessions() as session, session.begin():
        recipient = recipient_by_external_id(session, external_id)
        assert recipient.id is not None
        pending = erase_recipient(session, recipient.id, RECIPIENT_DELETED, now)
    log.info("recipient erased", outcome="erased", deliveries_cancelled=len(pending))
    return {"id": external_id, "erased": True, "deliveries_cancelled": len(pending)}


def plan_changes(app: App, recipient_ids: Sequence[int], now: datetime) -> int:
    """Plan the changed subscriptions that the last run's window already covered; how many were.

    The change is committed already: when Redis is down the planned rows wait for the reconcile
    (or the next run plans them), so the caller's answer stands.
    """
    if not recipient_ids:
        return 0
    try:
        report = build_runner(app).plan_recipients(now, list(recipient_ids))
    except RedisError as exc:
        log.warning("change saved, not planned at once", error=f"{type(exc).__name__}: {exc}")
        return 0
    return report.occurrences
