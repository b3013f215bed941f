"""Pausing a channel or a kind, and resuming it: its deliveries wait (never failed) while paused.

Shared by the CLI, the HTTP API and the dashboard. Resuming requeues, due now, every delivery that
was waiting on the pause, in the transaction that lifts it; the jobs are enqueued after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from planner.app import App
from planner.commands.delivery_actions import by_actor, requeue_rows
from planner.core import validation
from planner.core.status import Channel, DeliveryStatus
from planner.dispatch.reassign import enqueue_reassigned
from planner.errors import InvalidInput
from planner.store import pauses
from planner.store.operator import lock_deliveries, waiting_on_pause

log = structlog.get_logger("planner.ops")


def _pause_target(target: str) -> str:
    if target in Channel.__members__:
        return target
    try:
        return validation.kind(target, "target")
    except InvalidInput:
        raise InvalidInput("target", target, "a channel ('email', 'sms') or a notification kind") from None


def pause(app: App, target: str, now: datetime, actor: str | None = None) -> dict[str, Any]:
    """Hold the deliveries of a channel or kind; workers put them back as ``queued``/``paused``."""
    target = _pause_target(target)
    with app.sessions() as session, session.begin():
        created = pauses.pause(session, target, now)
    scope, value = pauses.scope_of(target)
    log.info(
        "paused", scope=scope, value=value, outcome="paused" if created else "already_paused", actor=actor
    )
    return {"scope": scope, "value": value, "paused": True, "changed": created}


def resume(app: App, target: str, now: datetime, actor: str | None = None) -> dict[str, Any]:
    """Lift a pause and requeue, due now, every delivery that was waiting on it.

    Deliveries still held by another pause (the kind is paused too) are left waiting for that one.
    """
    target = _pause_target(target)
    scope, value = pauses.scope_of(target)
    app.require_redis()
    with app.sessions() as session, session.begin():
        changed = pauses.resume(session, target)
        remaining = pauses.active_pauses(session)
        candidates = waiting_on_pause(session, scope, value)
        ids = [i for i, channel, kind in candidates if not pauses.is_paused(remaining, channel, kind)]
        rows = lock_deliveries(session, [DeliveryStatus.queued.value], ids=ids) if ids else []
        # A worker may have picked one up since the select; only rows still waiting on the pause move.
        rows = [r for r in rows if r.reason == "paused"]
        moved = requeue_rows(
            session,
            rows,
            now,
            event="resumed",
            batch_size=app.settings.delivery_batch_size,
            from_status=DeliveryStatus.queued,
            detail=by_actor(actor, {"pause": f"{scope}:{value}"}),
        )
    enqueue_reassigned(app.redis, moved, now)
    outcome = "resumed" if changed else "not_paused"
    log.info("resumed", scope=scope, value=value, outcome=outcome, requeued=len(rows), actor=actor)
    return {"scope": scope, "value": value, "paused": False, "changed": changed, "requeued": len(rows)}
