"""Recipient look-ups shared by the CLI and the HTTP API."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from planner.app import App
from planner.core.cadence import Cadence
from planner.core.localtime import local_date_of
from planner.core.quiet_hours import effective_quiet_hours
from planner.core.simulate import SimulatedSend, SubscriptionSpec, simulate
from planner.errors import NotFound
from planner.store.models import Recipient, Subscription


def get_recipient(session: Session, external_id: str) -> Recipient:
    recipient = session.scalars(select(Recipient).where(col(Recipient.external_id) == external_id)).first()
    if recipient is None:
        raise NotFound("recipient", external_id)
    return recipient


def simulate_recipient(
    app: App, external_id: str, from_date: date | None, days: int
) -> tuple[list[SimulatedSend], str]:
    """The recipient's upcoming sends under their active subscriptions, and a title for them."""
    policy = app.policy
    with app.sessions() as session:
        recipient = get_recipient(session, external_id)
        subs = session.scalars(
            select(Subscription).where(
                col(Subscription.recipient_id) == recipient.id, col(Subscription.active).is_(True)
            )
        ).all()
        specs = [
            SubscriptionSpec(
                kind=s.kind,
                channel=s.channel,
                cadence=Cadence.from_storage(s.send_time, s.days),
                quiet_hours=effective_quiet_hours(
                    s.channel, recipient.own_quiet_hours(s.channel), policy.quiet_defaults
                ),
            )
            for s in subs
        ]
        zone = recipient.timezone
    start = from_date or local_date_of(app.clock(), zone)
    title = f"{external_id} ({zone}): {days} days from {start.isoformat()}"
    return simulate(zone, specs, start, days), title
