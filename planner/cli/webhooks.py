"""``planner webhooks``: outgoing webhook endpoints, their events and attempts, redelivery.

The same commands the HTTP API calls (:mod:`planner.commands.webhooks`). ``add`` and
``rotate-secret`` print the secret alone on stdout (``SECRET=$(planner webhooks add ...)``), once.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from planner.cli.common import (
    JsonOption,
    err,
    key_value_table,
    named,
    new_table,
    out,
    parse_option,
    print_json,
    service,
)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The endpoint's id (`planner webhooks list`).")]
EventOption = Annotated[
    list[str] | None,
    typer.Option("--event", "-e", help="An event type it wants; repeat, or give a comma list."),
]
#: Where each command's values came from, for one-line errors naming the option.
_NAMES = {
    "url": "URL",
    "event_types": "--event",
    "description": "--description",
    "id": "ID",
    "message": "MESSAGE_ID",
    "overlap": "--overlap",
    "body": "the options",
}


def _types(events: list[str] | None) -> list[str] | None:
    if events is None:
        return None
    return [part.strip() for value in events for part in value.split(",") if part.strip()]


def _print_secret(data: dict[str, Any], secret: str, as_json: bool, what: str) -> None:
    if as_json:
        print_json(data | {"secret": secret})
        return
    typer.echo(secret)
    err.print(
        f"endpoint {data['id']} ({data['url']}) {what}; the secret is shown only now: give it to the "
        "receiver, which verifies each request's webhook-signature with it",
        highlight=False,
        soft_wrap=True,
    )


def webhooks_add(
    url: Annotated[str, typer.Argument(metavar="URL", help="Where to post: https://...")],
    event: EventOption = None,
    description: Annotated[str | None, typer.Option(help="What the endpoint is for.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Register it disabled.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Register an endpoint for some event types; prints its secret (whsec_...) once."""
    from planner.commands import webhooks

    with service() as svc, named(**_NAMES):
        created, secret = webhooks.register(
            svc, url, _types(event) or [], description, not disabled, now=svc.clock()
        )
    _print_secret(created, secret, as_json, "registered")


def webhooks_list(as_json: JsonOption = False) -> None:
    """The endpoints: URL, event types, enabled, and their events waiting, delivered, failed."""
    from planner.commands import webhooks

    with service() as svc:
        rows = webhooks.list_endpoints(svc)
    if as_json:
        print_json(rows)
        return
    table = new_table(title="webhook endpoints")
    for column in ("id", "url", "events", "enabled", "pending", "delivered", "failed"):
        table.add_column(column)
    for row in rows:
        state = "yes" if row["enabled"] else f"no ({row['disabled_reason']})"
        counts = row["events"]
        table.add_row(
            str(row["id"]), row["url"], ", ".join(row["event_types"]), state,
            str(counts["pending"] + counts["sending"]), str(counts["delivered"]), str(counts["failed"]),
        )  # fmt: skip
    out.print(table)


def webhooks_show(endpoint: IdArgument, as_json: JsonOption = False) -> None:
    """One endpoint, its event counts and its latest events."""
    from planner.commands import webhooks

    with service() as svc, named(**_NAMES):
        data = webhooks.show(svc, endpoint)
    if as_json:
        print_json(data)
        return
    shown = {k: v for k, v in data.items() if k not in ("latest", "events", "event_types")}
    shown["event types"] = ", ".join(data["event_types"])
    shown |= {f"events {status}": n for status, n in data["events"].items()}
    out.print(key_value_table(f"webhook endpoint {data['id']}", shown))
    out.print(_messages_table(data["latest"]))


def _messages_table(rows: list[dict[str, Any]]) -> Any:
    table = new_table(title="latest events")
    for column in ("event", "webhook-id", "type", "status", "attempts", "last answer", "next attempt"):
        table.add_column(column)
    for row in rows:
        answer = str(row["last_status_code"] or "") + (f" {row['last_error']}" if row["last_error"] else "")
        table.add_row(
            str(row["id"]), row["msg_id"], row["event_type"], row["status"], str(row["attempts"]),
            answer.strip(), row["next_attempt_at"] or "",
        )  # fmt: skip
    return table


def webhooks_update(
    endpoint: IdArgument,
    url: Annotated[str | None, typer.Option("--url", help="A new URL.")] = None,
    event: EventOption = None,
    description: Annotated[str | None, typer.Option(help="A new description ('' clears it).")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Enable (its waiting events go) or disable it.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change an endpoint's URL, event types, description, or enable or disable it."""
    from planner.commands import webhooks

    changes: dict[str, Any] = {"url": url, "event_types": _types(event), "enabled": enabled}
    changes = {k: v for k, v in changes.items() if v is not None}
    if description is not None:
        changes["description"] = description or None
    with service() as svc, named(**_NAMES):
        data = webhooks.update(svc, endpoint, changes, now=svc.clock())
    if as_json:
        print_json(data)
        return
    state = "enabled" if data["enabled"] else "disabled"
    err.print(f"endpoint {data['id']} updated ({state}: {', '.join(data['event_types'])})", highlight=False)


def webhooks_remove(endpoint: IdArgument, as_json: JsonOption = False) -> None:
    """Remove an endpoint with its events (those still waiting are dropped, and counted)."""
    from planner.commands import webhooks

    with service() as svc, named(**_NAMES):
        data = webhooks.remove(svc, endpoint, now=svc.clock())
    if as_json:
        print_json(data)
        return
    err.print(
        f"endpoint {data['id']} removed; {data['events_dropped']} waiting events dropped", highlight=False
    )


def webhooks_rotate_secret(
    endpoint: IdArgument,
    overlap: Annotated[
        str | None,
        typer.Option(
            help="How long the old secret also signs, e.g. 24h or 0s "
            "(default PLANNER_WEBHOOKS_SECRET_OVERLAP)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A new secret, printed once; the old one keeps signing too until the overlap ends."""
    from planner.clock import parse_duration
    from planner.commands import webhooks

    span = parse_option(overlap, lambda v: parse_duration(v, "overlap", allow_zero=True), "overlap")
    with service() as svc, named(**_NAMES):
        data, secret = webhooks.rotate_secret(svc, endpoint, span, now=svc.clock())
    _print_secret(
        data, secret, as_json, f"rotated (the old secret also signs until {data['previous_secret_until']})"
    )


def webhooks_redeliver(
    message: Annotated[
        str, typer.Argument(metavar="MESSAGE_ID", help="The event's id (`planner webhooks show ID`).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Send an event again now, under the same webhook-id, with a fresh set of attempts."""
    from planner.commands import webhooks

    with service() as svc, named(**_NAMES):
        data = webhooks.redeliver(svc, message, now=svc.clock())
    if as_json:
        print_json(data)
        return
    err.print(f"event {data['id']} ({data['msg_id']}) will be sent again now", highlight=False)


def webhooks_attempts(
    endpoint: IdArgument,
    message: Annotated[str | None, typer.Option("--message", help="Only this event's attempts.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """An endpoint's latest attempts: when, the result, latency, response code and body excerpt."""
    from planner.commands import webhooks

    with service() as svc, named(**{**_NAMES, "message": "--message"}):
        rows = webhooks.attempts(svc, endpoint, message, limit)
    if as_json:
        print_json(rows)
        return
    table = new_table(title=f"attempts of endpoint {endpoint}")
    for column in ("at", "event", "attempt", "result", "code", "ms", "answer or error"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["at"], f"{row['message_id']} {row['event_type']}", str(row["attempt"]),
            "ok" if row["succeeded"] else "failed", str(row["status_code"] or ""), str(row["latency_ms"]),
            (row["error"] or row["response_excerpt"] or "")[:80],
        )  # fmt: skip
    out.print(table)
