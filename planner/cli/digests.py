"""Digest events and snooze from the command line: ``planner events record``, ``planner snooze``.

Thin shells over :mod:`planner.commands.events` and :mod:`planner.commands.recipients`, the
functions behind ``POST /v1/events`` and ``PATCH /v1/recipients/{id}/subscriptions/{kind}/{channel}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from planner.cli.common import JsonOption, err, fail, named, parse_date, parse_option, print_json, service
from planner.clock import parse_instant
from planner.core.json_objects import unique_keys
from planner.errors import InvalidInput, shown

_EVENT_NAMES = {
    "recipient_id": "RECIPIENT",
    "kind": "KIND",
    "data": "--data",
    "occurred_at": "--at",
    "idempotency_key": "--key",
}


def _json_object(value: str) -> Any:
    try:
        return json.loads(value, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise fail(
            f"--data: {shown(value)} is invalid; expected a JSON object ({exc.msg} at column {exc.colno})"
        ) from None
    except InvalidInput as exc:  # a repeated key
        raise fail(f"--data: {exc}") from None


def events_record(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    kind: Annotated[str, typer.Argument(help="The digest's kind, e.g. comments_digest.")],
    data: Annotated[
        str | None, typer.Option(help='What the digest lists, a JSON object: \'{"author": "Ann"}\'.')
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="When it happened (ISO-8601 with offset; default now).")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: recording the same key again changes nothing.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Record an event for the recipient's next digest of KIND (one message lists them all)."""
    from planner.commands.events import record_event

    payload = _json_object(data) if data is not None else None
    when = parse_option(at, lambda v: parse_instant(v, "at"), "at")
    with service() as svc, named(**_EVENT_NAMES):
        created, result = record_event(
            svc, recipient, kind, payload, svc.clock(), occurred_at=when, idempotency_key=key
        )
    if as_json:
        print_json(result)
        return
    verb = "recorded" if created else "already recorded (same --key)"
    err.print(f"{verb}: event {result['id']} for {recipient}'s next {kind} digest", highlight=False)


def snooze_command(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    kind: Annotated[str, typer.Argument(help="The subscription's kind.")],
    channel: Annotated[str, typer.Argument(help="email or sms.")],
    until: Annotated[
        str | None, typer.Option(help="Local date: occurrences before it are skipped (snoozed).")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="End the snooze.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Snooze one subscription until a local date (or end its snooze) without re-sending the schedule.

    Pending deliveries on snoozed dates are cancelled and recorded again as skipped (snoozed)."""
    from planner.commands.recipients import patch_subscription

    if (until is None) == (not clear):
        raise fail("--until DATE or --clear: expected exactly one of them")
    day = parse_option(until, parse_date, "until")
    names = {"recipient_id": "RECIPIENT", "kind": "KIND", "channel": "CHANNEL", "snooze_until": "--until"}
    with service() as svc, named(**names):
        result = patch_subscription(
            svc, recipient, kind, channel, {"snooze_until": day.isoformat() if day else None}, svc.clock()
        )
    if as_json:
        print_json(result)
        return
    shown_until = f"until {day.isoformat()}" if day else "cleared"
    err.print(f"{recipient} {kind}/{channel}: snooze {shown_until}", highlight=False)
