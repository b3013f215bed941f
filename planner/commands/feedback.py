"""Applying provider feedback: delivery reports (status callbacks, bounces, complaints) and inbound
SMS keywords (STOP, START). Each callback is applied in one transaction that first claims its event
id (:func:`~planner.store.feedback.claim_event`), so a repeat changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from planner.app import App
from planner.core.feedback import DeliveryReport, InboundSms, message_id_forms
from planner.errors import TokenReused
from planner.store import feedback as store_feedback
from planner.store.audit import record_audit
from planner.store.db import Session
from planner.store.engagement_writes import record_engagement
from planner.store.feedback import (
    ReportedDelivery,
    claim_event,
    delivery_by_message_id,
    mark_address_invalid,
    record_provider_status,
    set_sms_opt_out_by_phone,
)
from planner.store.preferences import set_kind_opt_out

log = structlog.get_logger("planner.feedback")


def drop_old_provider_events(app: App, now: datetime) -> int:
    """The maintenance pass's retention of applied callbacks (their ids and signing tokens): kept
    PLANNER_PROVIDER_EVENT_RETENTION, longer than any provider retries a callback or than a Mailgun
    signature's timestamp is accepted, so a repeat within that time still changes nothing."""
    with app.sessions() as session, session.begin():
        dropped = store_feedback.drop_old_provider_events(
            session, now - app.settings.provider_event_retention
        )
    if dropped:
        log.info("provider callbacks forgotten past the retention", dropped=dropped)
    return dropped


def apply_report(app: App, report: DeliveryReport, now: datetime) -> dict[str, Any]:
    """Record what the provider said of a message on its delivery; mark a dead address invalid and
    opt a complaining recipient out of the delivery's kind."""
    with app.sessions() as session, session.begin():
        delivery = delivery_by_message_id(session, message_id_forms(report.message_id))
        # Claimed even for a message we do not know: a Mailgun token must sign one event only.
        delivery_id = None if delivery is None else delivery.id
        claim = claim_event(session, report.provider, report.event_id, report.token, delivery_id, now)
        if claim == "token_reused":
            raise TokenReused(report.event_id)
        if delivery is None:
            # Nothing to change, and retrying cannot help: the provider gets its 200.
            log.info("provider report for an unknown message", provider=report.provider, outcome="unknown")
            return {"recorded": False, "reason": "unknown message", "delivery_id": None}
        if claim == "repeat":
            return {"recorded": False, "reason": "already recorded", "delivery_id": delivery.id}
        if report.engagement is not None:
            return _engaged(session, delivery, report, now)
        detail = {"provider": report.provider, "event_id": report.event_id}
        detail |= {k: v for k, v in (("code", report.code), ("detail", report.detail)) if v}
        record_provider_status(session, delivery.id, report.status, detail, now)
        effects = _consequences(app, session, delivery, report, now)
    log.info(
        "provider report recorded",
        provider=report.provider,
        delivery_id=delivery.id,
        status=report.status,
        code=report.code,
        outcome=",".join(effects) or "recorded",
    )
    return {
        "recorded": True,
        "delivery_id": delivery.id,
        "provider_status": report.status,
        "effects": effects,
    }


def _engaged(
    session: Session, delivery: ReportedDelivery, report: DeliveryReport, now: datetime
) -> dict[str, Any]:
    """An open or a click of the delivery's message: the recipient's engagement, deduplicated as
    every engagement is (the callback's id was claimed; (recipient, event, instant) is unique)."""
    at = report.occurred_at or now
    row = {
        "recipient_id": delivery.recipient_id,
        "kind": delivery.kind,
        "event": report.engagement,
        "occurred_at": at,
        "created_at": now,
    }
    record_engagement(session, row)
    log.info(
        "provider engagement recorded",
        provider=report.provider,
        delivery_id=delivery.id,
        engagement=report.engagement,
        outcome="recorded",
    )
    return {"recorded": True, "delivery_id": delivery.id, "effects": [f"engagement:{report.engagement}"]}


def _consequences(
    app: App, session: Session, delivery: ReportedDelivery, report: DeliveryReport, now: datetime
) -> list[str]:
    effects = []
    if report.dead_address:
        reason = f"{report.provider} reported {report.status}" + (f" ({report.code})" if report.code else "")
        mark_address_invalid(session, delivery.recipient_id, delivery.channel, reason, now)
        effects.append(f"{delivery.channel}_invalid")
    if report.complaint:
        if app.policy.is_critical(delivery.kind):
            effects.append("complaint_on_critical_kind")  # critical kinds cannot be opted out of
        elif set_kind_opt_out(session, delivery.recipient_id, delivery.kind, delivery.channel, True, now):
            effects.append(f"opted_out:{delivery.kind}/{delivery.channel}")
    return effects


def apply_inbound_sms(app: App, sms: InboundSms, now: datetime) -> dict[str, Any]:
    """STOP and its synonyms opt every recipient with the sender's number out of SMS; START and
    UNSTOP opt them back in; anything else is acknowledged and ignored."""
    if sms.opt_out is None or not sms.sender:
        return {"recorded": False, "reason": "not an opt-out or opt-in keyword", "recipients": []}
    with app.sessions() as session, session.begin():
        if claim_event(session, "twilio", f"inbound:{sms.event_id}", None, None, now) != "new":
            return {"recorded": False, "reason": "already recorded", "recipients": []}
        changed = set_sms_opt_out_by_phone(session, sms.sender, sms.opt_out, now)
        action = "sms_opted_out" if sms.opt_out else "sms_opted_in"
        for external_id in changed:
            record_audit(session, now, "twilio-inbound", action, f"recipient:{external_id}")
    log.info("inbound sms keyword", opted_out=sms.opt_out, recipients=len(changed), outcome=action)
    return {"recorded": True, "opted_out": sms.opt_out, "recipients": changed}
