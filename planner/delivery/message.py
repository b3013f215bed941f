"""What a delivery says: its template context, its one-click unsubscribe link, its Message-ID, and the
copy of it kept with the delivery.

The same Message-ID on every attempt of a delivery, so a provider or a person can recognise a copy
of an earlier attempt (a retry after an unknown outcome, a recovered lease).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from adapters import Message, PermanentError
from planner.core.localtime import to_local
from planner.core.message_copy import DigestListing, MessageCopy, bounded_copy
from planner.core.policy import PlanningPolicy
from planner.core.unsubscribe import UnsubscribeTarget, sign
from planner.delivery.templating import Renderer
from planner.store.claims import DeliveryRow, RecipientRow
from planner.store.digests import DigestContents


def message_id_for(delivery_id: int, dedup_key: str, domain: str = "planner.local") -> str:
    """The same Message-ID on every attempt of a delivery, so duplicates are recognisable."""
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:16]
    return f"<delivery-{delivery_id}.{digest}@{domain}>"


@dataclass(frozen=True)
class UnsubscribeLinks:
    """One-click unsubscribe (RFC 8058, RFC 2369) for non-critical email."""

    base_url: str
    secret: bytes
    mailto: str | None = None

    def link(self, recipient_id: int, kind: str, channel: str) -> str:
        token = sign(self.secret, UnsubscribeTarget(recipient_id, kind, channel))
        return f"{self.base_url}/u/{token}"

    def headers(self, link: str) -> dict[str, str]:
        targets = [f"<{link}>"]
        if self.mailto:
            token = link.rsplit("/", 1)[1]
            targets.append(f"<mailto:{self.mailto}?subject=unsubscribe%20{token}>")
        return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


@dataclass(frozen=True)
class MessageMaker:
    """Renders a claimed delivery into the message an adapter sends."""

    renderer: Renderer
    policy: PlanningPolicy
    unsubscribe: UnsubscribeLinks | None = None

    def make(self, d: DeliveryRow, recipient: RecipientRow, digest: DigestContents | None) -> Message:
        """Raises ``TemplateFailure`` (the template) or ``PermanentError`` (no address)."""
        address = recipient.email if d.channel == "email" else recipient.phone
        if not address:
            raise PermanentError(f"recipient has no {d.channel} address")
        context = template_context(d, recipient)
        if digest is not None:
            context |= digest_context(digest, recipient.timezone)
        headers: dict[str, str] = {}
        if self.unsubscribe is not None and d.channel == "email" and not self.policy.is_critical(d.kind):
            link = self.unsubscribe.link(recipient.id, d.kind, d.channel)
            context["unsubscribe_url"] = link
            headers = self.unsubscribe.headers(link)
        rendered = self.renderer.render(
            d.kind, d.channel, context, locale=recipient.locale, zone=recipient.timezone
        )
        metadata = {}
        if rendered.locale is not None:
            # The language the message is in (RFC 3282), and which templates it came from: the
            # delivery records it (planner.delivery.deliverer), the testing kit shows it.
            metadata["locale"] = rendered.locale
            if d.channel == "email":
                headers = {**headers, "Content-Language": rendered.locale}
        return Message(
            delivery_id=d.id,
            dedup_key=d.dedup_key,
            recipient_id=recipient.external_id,
            kind=d.kind,
            channel=d.channel,
            to=address,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            scheduled_at=d.scheduled_at,
            message_id=message_id_for(d.id, d.dedup_key),
            metadata=metadata,
            headers=headers,
        )


def template_context(d: DeliveryRow, recipient: RecipientRow) -> dict[str, Any]:
    local = to_local(d.scheduled_at, recipient.timezone)
    return {
        "recipient": {
            "external_id": recipient.external_id,
            "timezone": recipient.timezone,
            "email": recipient.email,
            "phone": recipient.phone,
            "locale": recipient.locale,
            "attributes": recipient.attributes or {},
        },
        "delivery": {"id": d.id, "kind": d.kind, "channel": d.channel, "dedup_key": d.dedup_key},
        "local_date": (d.local_date or local.date()).isoformat(),
        # The instant, for the formatting filters: ``{{ scheduled_at | localtime }}``.
        "scheduled_at": d.scheduled_at.isoformat(),
        "scheduled_local": local.strftime("%Y-%m-%d %H:%M %Z"),
        "data": d.data or {},
    }


def digest_context(digest: DigestContents, zone: str) -> dict[str, Any]:
    """``events`` (oldest first, at most the cap), ``events_more`` (the rest) and ``events_total``."""
    events = [
        {
            "id": e["id"],
            "occurred_at": e["occurred_at"].isoformat(),
            "occurred_local": to_local(e["occurred_at"], zone).strftime("%Y-%m-%d %H:%M"),
            "data": e["data"],
        }
        for e in digest.events
    ]
    return {"events": events, "events_more": digest.more, "events_total": digest.total}


def kept_copy(message: Message, digest: DigestContents | None, max_bytes: int) -> MessageCopy | None:
    """The copy of ``message`` kept with its delivery, within ``max_bytes`` (0: none is kept): its
    subject and bodies, the address and Message-ID it went with, the headers the service added, and
    for a digest the events it listed."""
    if max_bytes <= 0:
        return None
    headers = {"To": message.to, "Message-ID": message.message_id, **message.headers}
    listing = None
    if digest is not None:
        listing = DigestListing(tuple(int(e["id"]) for e in digest.events), digest.more)
    return bounded_copy(message.subject, message.text, message.html, headers, listing, max_bytes)
