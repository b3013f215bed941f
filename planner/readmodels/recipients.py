"""Recipients as an operator reads them: each subscription's real schedule and state, and the
recipients list (search by id prefix, email or phone; filters by zone, opt-out, invalid address).

Shared by the dashboard, ``planner recipients list`` and ``GET /v1/recipients``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from planner.app import App
from planner.core import validation
from planner.core.recipient import CHANNELS
from planner.core.recipient_search import RecipientSearch
from planner.core.unsubscribe import UnsubscribeTarget
from planner.core.wording import kind_name
from planner.errors import InvalidInput
from planner.store.chunks import cadence_of
from planner.store.db import Session
from planner.store.models import Recipient, Subscription, kinds_opted_out
from planner.store.recipients import active_subscription_counts, find_recipients, recipient_by_id

#: A page of the recipients list holds at most this many.
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class SubscriptionView:
    """One subscription as the recipient page shows it."""

    kind: str
    channel: str
    #: The schedule in words (:meth:`planner.core.cadence.Cadence.describe`): every wall time,
    #: the days or the rule, the start and end dates.
    schedule: str
    #: The recurrence rule as written, when there is one.
    rrule: str | None
    digest: bool
    snooze_until: date | None
    #: Why nothing is sent on this channel for this kind, if so: 'email' (the whole channel) or
    #: 'daily_brief on email' (the kind); None when not opted out.
    opted_out: str | None
    active: bool
    next_at: datetime | None


def subscription_views(recipient: Recipient, subs: Sequence[Subscription]) -> list[SubscriptionView]:
    """The recipient's subscriptions with their schedules in words and their opt-outs."""
    views = []
    for sub in subs:
        cadence = cadence_of(sub)
        views.append(
            SubscriptionView(
                kind=sub.kind,
                channel=sub.channel,
                schedule=cadence.describe(),
                rrule=None if cadence.rule is None else cadence.rule.text,
                digest=sub.digest,
                snooze_until=sub.snooze_until,
                opted_out=_opted_out(recipient, sub.kind, sub.channel),
                active=sub.active,
                next_at=sub.next_at,
            )
        )
    return views


def _opted_out(recipient: Recipient, kind: str, channel: str) -> str | None:
    if getattr(recipient, f"{channel}_opt_out"):
        return f"all {channel}"
    if kind in kinds_opted_out(recipient.opt_outs, channel):
        return f"{kind} on {channel}"
    return None


def preferences_of(recipient: Recipient) -> dict[str, dict[str, Any]]:
    """Per channel: opted out of the whole channel, and the kinds opted out of on it."""
    return {
        channel: {
            "opted_out": bool(getattr(recipient, f"{channel}_opt_out")),
            "opted_out_kinds": sorted(kinds_opted_out(recipient.opt_outs, channel)),
        }
        for channel in CHANNELS
    }


@dataclass(frozen=True)
class RecipientList:
    """One page of recipients; ``next_after`` is the ``after`` of the next page (None: the last)."""

    rows: list[dict[str, Any]]
    next_after: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"recipients": self.rows, "next_after": self.next_after}


def list_recipients(
    session: Session, search: RecipientSearch, after: str | None = None, limit: int = 50
) -> RecipientList:
    """The recipients matching ``search`` in id order, ``limit`` a page, after the id ``after``."""
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput("limit", limit, f"a whole number from 1 to {MAX_PAGE_SIZE}")
    if after is not None:
        validation.external_id(after, "after")
    # One row more than the page says whether there is a next page, without counting.
    found = find_recipients(session, search, after, limit + 1)
    page = found[:limit]
    counts = active_subscription_counts(session, [r.id for r in page if r.id is not None])
    rows = [recipient_row(r, counts.get(r.id or 0, 0)) for r in page]
    return RecipientList(rows, page[-1].external_id if len(found) > limit else None)


def recipient_row(recipient: Recipient, subscriptions: int) -> dict[str, Any]:
    """A recipient as a row of the list: addresses, zone, opt-outs, invalid addresses."""
    return {
        "id": recipient.external_id,
        "timezone": recipient.timezone,
        "email": recipient.email,
        "phone": recipient.phone,
        "preferences": preferences_of(recipient),
        "invalid": {channel: getattr(recipient, f"{channel}_invalid") for channel in CHANNELS},
        "subscriptions": subscriptions,
    }


@dataclass(frozen=True)
class LinkState:
    """What the unsubscribe link's page tells its person (see ``planner.api.routes.unsubscribe``)."""

    #: The kind as people read it (``PLANNER_KIND_NAMES``).
    name: str
    channel: str
    #: Opted out of this kind on this channel.
    unsubscribed: bool
    #: Opted out of the whole channel: nothing of it arrives, whatever the kind.
    channel_off: bool
    #: A critical kind: it cannot be opted out of.
    critical: bool


def link_state(app: App, target: UnsubscribeTarget) -> LinkState | None:
    """The link's kind and whether its person is opted out of it; None once the recipient is gone."""
    with app.sessions() as session:
        recipient = recipient_by_id(session, target.recipient_id)
    if recipient is None or recipient.external_id.startswith("#"):
        return None
    return LinkState(
        name=kind_name(target.kind, app.settings.kind_names),
        channel=target.channel,
        unsubscribed=target.kind in kinds_opted_out(recipient.opt_outs, target.channel),
        channel_off=bool(getattr(recipient, f"{target.channel}_opt_out")),
        critical=app.policy.is_critical(target.kind),
    )
