"""What a recipient would receive over the next days (``planner simulate``), from the database's facts.

The sends come from the pure :func:`planner.core.simulate.simulate`, which applies the rule chain's
quiet-hours rule (critical kinds bypass it, as in the planner).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from rich.table import Table
from sqlalchemy import select
from sqlmodel import col

from planner.app import App
from planner.core.localtime import UTC, format_offset, hhmm, local_date_of
from planner.core.simulate import SimulatedSend, SubscriptionSpec, simulate
from planner.store.chunks import cadence_of
from planner.store.models import Subscription
from planner.store.queries import recipient_by_external_id


def simulate_recipient(
    app: App, external_id: str, from_date: date | None, days: int
) -> tuple[list[SimulatedSend], str]:
    """The recipient's upcoming sends under their active subscriptions, and a title for them."""
    with app.sessions() as session:
        recipient = recipient_by_external_id(session, external_id)
        subs = session.scalars(
            select(Subscription).where(
                col(Subscription.recipient_id) == recipient.id, col(Subscription.active).is_(True)
            )
        ).all()
        specs = [
            SubscriptionSpec.of(
                app.policy,
                s.kind,
                s.channel,
                cadence_of(s),
                recipient.audience(s.channel),
                s.snooze_until,
                digest=s.digest,
            )
            for s in subs
        ]
        zone = recipient.timezone
    start = from_date or local_date_of(app.clock(), zone)
    schedules = "; ".join(
        f"{spec.kind}/{spec.channel} {spec.cadence}{' (digest)' if spec.digest else ''}" for spec in specs
    )
    title = f"{external_id} ({zone}): {days} days from {start.isoformat()} · {schedules}"
    return simulate(zone, specs, start, days), title


def to_json_rows(sends: Sequence[SimulatedSend]) -> list[dict[str, object]]:
    """Plain rows for ``--json``: dates as YYYY-MM-DD, times as ISO 8601 with their offset."""
    return [
        {
            "kind": send.kind,
            "channel": send.channel,
            "local_date": send.local_date.isoformat(),
            "planned_local": send.planned_local.isoformat(),
            "send_local": send.send_local.isoformat(),
            "send_at": send.send_at.astimezone(UTC).isoformat(),
            "deferred": send.deferred,
            "notes": list(send.notes),
        }
        for send in sends
    ]


def render_table(sends: Sequence[SimulatedSend], title: str) -> Table:
    table = Table(title=title)
    for column in ("Local date", "Kind", "Channel", "Local time", "UTC", "Notes"):
        table.add_column(column)
    for send in sends:
        table.add_row(
            send.local_date.isoformat(),
            send.kind,
            send.channel,
            _local_cell(send),
            send.send_at.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"),
            "\n".join(send.notes),
        )
    return table


def _local_cell(send: SimulatedSend) -> str:
    """'03:30 -04:00 EDT'; the date is added when a deferral moved the send to another day."""
    local = send.send_local
    text = f"{hhmm(local)} {format_offset(local.utcoffset())}"
    name = local.tzname()
    # Zones without an abbreviation are named by their offset ('+11'), already shown.
    if name and name[0] not in "+-":
        text += f" {name}"
    if local.date() != send.local_date:
        text = f"{local.date().isoformat()} {text}"
    return text
