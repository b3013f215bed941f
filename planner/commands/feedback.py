"""Applying provider feedback: delivery reports (status callbacks, bounces, complaints) and inbound
SMS keywords (STOP, START). Each callback is applied in one transaction that first claims its event
id (:func:`~planner.store.feedback.claim_event`), so a repeat changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from planner.app import App
from planner.core.fallback import conditions_of_report
from planner.core.feedback import DeliveryReport, InboundSms, message_id_forms
from planner.core.job_batches import JobBatch
from planner.core.webhook_events import (
    RECIPIENT_ADDRESS_INVALID,
    RECIPIENT_COMPLAINED,
    RECIPIENT_OPTED_IN,
    RECIPIENT_OPTED_OUT,
    DeliveryFacts,
    make_event,
    provider_event_type,
    public_recipient_id,
    recipient_event,
)
from planner.dispatch.outbox import enqueue_committed
from planner.errors import TokenReused
from planner.store import fallbacks
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
from planner.store.webhook_endpoints import wanted_types
from planner.store.webhooks import emit, external_ids

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
        _emit_report_events(session, delivery, report, now)
        effect, job = _fallback(app, session, delivery, report, now)
    if effect is not None:
        effects.append(effect)
    if job is not None:
        enqueue_committed(app.redis, [job], now)
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
        mark_address_invalid(session, delivery.recipient_id, delivery.channel, _invalid_reason(report), now)
        effects.append(f"{delivery.channel}_invalid")
    if report.complaint:
        if app.policy.is_critical(delivery.kind):
            effects.append("complaint_on_critical_kind")  # critical kinds cannot be opted out of
        elif set_kind_opt_out(session, delivery.recipient_id, delivery.kind, delivery.channel, True, now):
            effects.append(f"opted_out:{delivery.kind}/{delivery.channel}")
    return effects


def _invalid_reason(report: DeliveryReport) -> str:
    return f"{report.provider} reported {report.status}" + (f" ({report.code})" if report.code else "")


def _emit_report_events(
    session: Session, delivery: ReportedDelivery, report: DeliveryReport, now: datetime
) -> None:
    """The webhook events of a provider's report, in its transaction: the delivery's provider
    status, and what it says of the recipient (a dead address, a complaint), as far as wanted."""
    wanted = wanted_types(session)
    provider_type = provider_event_type(report.status)
    if not wanted.intersection({provider_type, RECIPIENT_ADDRESS_INVALID, RECIPIENT_COMPLAINED}):
        return
    recipient = public_recipient_id(external_ids(session, [delivery.recipient_id]).get(delivery.recipient_id))
    facts = DeliveryFacts(
        delivery.id, recipient, delivery.kind, delivery.channel, delivery.dedup_key, delivery.scheduled_at
    )
    events = []
    if provider_type in wanted:
        assert provider_type is not None
        data = facts.data(
            delivery.status, delivery.reason, provider=report.provider, provider_status=report.status,
            code=report.code, detail=report.detail,
        )  # fmt: skip
        events.append(make_event(provider_type, now, data))
    if report.dead_address and RECIPIENT_ADDRESS_INVALID in wanted:
        error = _invalid_reason(report)
        events.append(
            recipient_event(
                RECIPIENT_ADDRESS_INVALID, now, recipient, delivery.channel,
                delivery_id=delivery.id, error=error, source="provider_report",
            )
        )
    if report.complaint and RECIPIENT_COMPLAINED in wanted:
        events.append(
            recipient_event(
                RECIPIENT_COMPLAINED, now, recipient, delivery.channel,
                kind=delivery.kind, delivery_id=delivery.id, provider=report.provider,
            )
        )
    emit(session, events, now)


def _fallback(
    app: App, session: Session, delivery: ReportedDelivery, report: DeliveryReport, now: datetime
) -> tuple[str | None, JobBatch | None]:
    """The report's bearing on the delivery's fallback, in the report's transaction: a failure the
    rule names plans it; a delivery cancels one still waiting (:mod:`planner.store.fallbacks`)."""
    if report.status == "delivered":
        return fallbacks.after_delivered(session, delivery.id, now), None
    conditions = conditions_of_report(report.status, dead_address=report.dead_address)
    if not conditions:
        return None, None
    planned = fallbacks.after_failure(
        session, delivery.id, conditions, reported=True, policy=app.policy, now=now
    )
    if planned is None:
        return None, None
    return f"fallback_planned:{planned.delivery_id}", planned.job


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
        event_type = RECIPIENT_OPTED_OUT if sms.opt_out else RECIPIENT_OPTED_IN
        if changed and event_type in wanted_types(session):
            source = {"kind": None, "source": "sms_keyword"}
            events = [
                recipient_event(event_type, now, public_recipient_id(e), "sms", **source) for e in changed
            ]
            emit(session, events, now)
    log.info("inbound sms keyword", opted_out=sms.opt_out, recipients=len(changed), outcome=action)
    return {"recorded": True, "opted_out": sms.opt_out, "recipients": changed}
