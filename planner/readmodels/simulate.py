"""What a recipient would receive over the next days (``planner simulate``), from the database's facts.

The sends are the planner's own decisions (:func:`planner.core.simulate.simulate`) on the inputs the
planner's chunk store loads for the recipient's active subscriptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from planner.app import App
from planner.core.localtime import UTC, local_date_of
from planner.core.simulate import SimulatedSend, simulate, start_of
from planner.store.chunks import ChunkStore, cadence_of, subscription_state
from planner.store.recipient_facts import recipient_state_by_external_id
from planner.store.subscriptions import recipient_subscriptions


def simulate_recipient(
    app: App, external_id: str, from_date: date | None, days: int
) -> tuple[list[SimulatedSend], str]:
    """The recipient's upcoming sends under their active subscriptions, and a title for them."""
    with app.sessions() as session:
        recipient = recipient_state_by_external_id(session, external_id)
        zone = recipient.timezone
        start = from_date or local_date_of(app.clock(), zone)
        subs = [s for s in recipient_subscriptions(session, recipient.id) if s.active]
        schedules = "; ".join(
            f"{s.kind}/{s.channel} {cadence_of(s)}{' (digest)' if s.digest else ''}" for s in subs
        )
        title = f"{external_id} ({zone}): {days} days from {start.isoformat()} · {schedules}"
        if not subs:
            return [], title
        begins = start_of(start, zone)
        states = [subscription_state(s, (begins, start, None)) for s in subs]
        inputs = ChunkStore.of(session).load_inputs(
            session, states, begins, app.policy.longest_cap_window, lock=False, replay_from=start
        )
    digests = {s.id for s in subs if s.digest and s.id is not None}
    return simulate(inputs, app.policy, start, days, digests=digests), title


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
