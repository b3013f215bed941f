"""Outgoing webhooks at a glance: endpoints, their waiting events, and the notice of an endpoint the
service disabled because it kept failing. Shared by ``planner status``, ``/readyz``, the metrics and
the dashboard; it reads only the waiting events (an index of open rows), never the settled ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from planner.app import App
from planner.store.webhook_deliveries import OPEN, status_counts
from planner.store.webhook_endpoints import Endpoint, all_endpoints, failing_disabled


@dataclass(frozen=True)
class WebhookState:
    endpoints: list[Endpoint]
    #: (endpoint id, status, events) of the waiting events (pending, sending).
    counts: list[tuple[int, str, int]]
    disabled_failing: list[Endpoint]

    def events(self, endpoint_id: int | None = None) -> dict[str, int]:
        """Waiting events by status, of one endpoint or of all."""
        found = {status: 0 for status in OPEN}
        for e, status, n in self.counts:
            if endpoint_id is None or e == endpoint_id:
                found[status] += n
        return found


def webhook_state(app: App) -> WebhookState:
    with app.sessions() as session:
        waiting = status_counts(session, waiting_only=True)
        return WebhookState(all_endpoints(session), waiting, failing_disabled(session))


def notices(state: WebhookState) -> list[str]:
    """One line per endpoint the service disabled, saying what waits and what to do."""
    lines = []
    for e in state.disabled_failing:
        waiting = state.events(e.id)["pending"]
        when = e.disabled_at.isoformat() if e.disabled_at else "?"
        lines.append(
            f"webhook endpoint {e.id} ({e.url}) disabled at {when}: {e.disabled_reason}; "
            f"{waiting} events wait for it; fix the receiver, then `planner webhooks update {e.id} --enable`"
        )
    return lines


def failing_for(endpoint: Endpoint, now: datetime) -> float:
    """Seconds an enabled endpoint has failed without one success (0 when it is fine)."""
    if not endpoint.enabled or endpoint.failing_since is None:
        return 0.0
    return max(0.0, (now - endpoint.failing_since).total_seconds())


def status_section(app: App, now: datetime) -> dict[str, Any]:
    """The ``webhooks`` part of ``planner status``."""
    state = webhook_state(app)
    failing = [
        {"id": e.id, "url": e.url, "failing_seconds": round(failing_for(e, now))}
        for e in state.endpoints
        if failing_for(e, now)
    ]
    return {
        "endpoints": len(state.endpoints),
        "enabled": sum(e.enabled for e in state.endpoints),
        "events": state.events(),
        "failing": failing,
        "notices": notices(state),
    }
