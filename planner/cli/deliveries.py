"""Inspect and manage deliveries: list, show, retry, cancel."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from planner.cli.common import (
    Grid,
    JsonOption,
    err,
    fail,
    key_values,
    named,
    parse_option,
    print_grids,
    print_json,
    service,
)
from planner.clock import parse_instant
from planner.core import validation
from planner.core.paging import MAX_LIMIT
from planner.core.validation import ID_MAX
from planner.errors import shown

IdArgument = Annotated[int, typer.Argument(help="The delivery id.", min=1, max=ID_MAX)]


def deliveries_list(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Only this recipient (external id).")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    since: Annotated[str | None, typer.Option(help="Scheduled at or after this instant.")] = None,
    after: Annotated[
        str | None, typer.Option(help="The cursor a previous page printed: the next page.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many (a page).")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List deliveries in scheduled order (scheduled time, then id), a page at a time: when there
    are more, the next page's --after cursor is printed on stderr."""
    from planner.core.paging import cursor_after, decode_cursor
    from planner.core.status import DeliveryStatus
    from planner.store.queries import DeliveryFilter, list_deliveries

    if status is not None and status not in DeliveryStatus.__members__:
        raise fail(f"--status: {shown(status)} is invalid; expected one of {', '.join(DeliveryStatus)}")
    # A typo in a filter would list nothing and look like an answer: refuse it instead.
    parse_option(recipient, validation.external_id, "recipient")
    parse_option(kind, validation.kind, "kind")
    parse_option(channel, validation.channel, "channel")
    flt = DeliveryFilter(
        status=status,
        recipient=recipient,
        kind=kind,
        channel=channel,
        since=parse_option(since, lambda v: parse_instant(v, "since"), "since"),
        limit=limit + 1,  # one more: whether there is a next page
        after=parse_option(after, decode_cursor, "after"),
    )
    with service() as svc, svc.sessions() as session:
        rows = list_deliveries(session, flt)
    if len(rows) > limit:
        rows = rows[:limit]
        err.print(f"more: --after {cursor_after(rows[-1])}", highlight=False)
    if as_json:
        print_json(rows)
        return
    columns = ("id", "recipient", "kind", "channel", "local date", "scheduled (UTC)", "status", "reason")
    cells = [
        (str(row["id"]), row["recipient_id"], row["kind"], row["channel"], row["local_date"] or "",
         row["scheduled_at"], row["status"], row["reason"] or "")
        for row in rows
    ]  # fmt: skip
    print_grids(Grid(f"{len(rows)} deliveries", columns, cells))


def deliveries_show(delivery_id: IdArgument, as_json: JsonOption = False) -> None:
    """One delivery with its data, its full timeline and what was sent (the kept copy)."""
    from planner.cli.message import message_grid, print_bodies
    from planner.readmodels.timeline_words import detail_words
    from planner.store.queries import get_delivery

    with service() as svc, svc.sessions() as session:
        data = get_delivery(session, delivery_id)
    if as_json:
        print_json(data)
        return
    fields = {k: v for k, v in data.items() if k not in ("timeline", "data", "message")}
    fields["data"] = json.dumps(data["data"]) if data["data"] is not None else None
    columns = ("at (UTC)", "event", "status", "reason", "detail")
    entries = [
        (e["at"], e["event"], e["status"] or "", e["reason"] or "", detail_words(e["detail"]))
        for e in data["timeline"]
    ]
    summary = key_values(f"delivery {delivery_id}", fields)
    print_grids(summary, Grid("timeline", columns, entries), message_grid(data["message"]))
    print_bodies(data["message"])


def deliveries_retry(
    delivery_id: Annotated[
        int | None, typer.Argument(help="The delivery id (or use --all-dead).", min=1, max=ID_MAX)
    ] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Redrive every dead delivery.")] = False,
    kind: Annotated[str | None, typer.Option(help="With --all-dead: only this kind.")] = None,
) -> None:
    """Redrive a dead delivery (a fresh attempt budget) or send a retrying one now."""
    from planner.commands import delivery_actions

    if (delivery_id is None) == (not all_dead):
        raise fail("give either a delivery ID or --all-dead (not both)")
    if kind is not None and not all_dead:
        raise fail("--kind: only applies with --all-dead")
    with service(redis=True) as svc, named(kind="--kind", status="ID"):
        now = svc.clock()
        if delivery_id is not None:
            result = delivery_actions.retry(svc, delivery_id, now)
        else:
            result = delivery_actions.retry_all_dead(svc, now, kind)
    for d_id in result.requeued:
        err.print(f"delivery {d_id} queued again (job {result.job_ids[d_id]})", highlight=False)
    if all_dead:
        err.print(f"{len(result.requeued)} dead deliveries redriven", highlight=False)


def deliveries_cancel(delivery_id: IdArgument) -> None:
    """Cancel a pending delivery (planned, queued or retrying)."""
    from planner.commands import delivery_actions

    with service() as svc, named(status="ID"):
        delivery_actions.cancel(svc, delivery_id, svc.clock())
    err.print(f"delivery {delivery_id} cancelled", highlight=False)
