"""Operations commands: status, pause/resume, explain, notify, engagement, templates check.

Each is a thin shell over the commands and read models (:mod:`planner.commands`, :mod:`planner.readmodels`),
the same functions the HTTP API and the dashboard call.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from planner.cli.common import (
    Grid,
    JsonOption,
    err,
    escape,
    fail,
    key_values,
    named,
    out,
    parse_date,
    parse_option,
    print_grids,
    print_json,
    service,
)
from planner.clock import parse_instant
from planner.core.json_objects import unique_keys
from planner.errors import InvalidInput


def status_command(as_json: JsonOption = False) -> None:
    """Deliveries by status, queue depths, scheduled jobs, live workers and how late the planner is."""
    from planner.core.wording import duration
    from planner.readmodels.status import COUNTED, DEAD_WINDOW, collect_status

    with service(redis=True) as svc:
        data = collect_status(svc, svc.clock())
    if as_json:
        print_json(data)
        return
    since = data["planner"]["seconds_since_last_successful_run"]
    queues = [(name, str(q["depth"]), str(q["scheduled"])) for name, q in data["queues"].items()]
    planner = data["planner"]
    last = planner["last_run"] or {}
    print_grids(
        key_values(
            f"deliveries: {COUNTED}",
            data["deliveries"] or {"(none)": 0},
        ),
        Grid("RQ queues", ("queue", "waiting", "scheduled"), queues),
        key_values(
            "planner",
            {
                "live workers": data["workers"]["count"],
                f"dead deliveries (last {DEAD_WINDOW})": data["dead"],
                "paused": ", ".join(_pause_text(p) for p in data["paused"]) or "nothing",
                "last run": f"{last.get('status')} at {last.get('started_at')}" if last else "never",
                "since last successful run": "never" if since is None else duration(since),
                "oldest overdue cursor": planner["oldest_overdue_cursor"],
                "late": "; ".join(planner["late"]) or "no",
                "oldest due delivery waiting": data["waiting"]["oldest_due_delivery"] or "none",
                "stuck": "; ".join(data["waiting"]["stuck"]) or "no",
                "webhook endpoints": _webhooks_text(data["webhooks"]),
                "retention": _retention_text(data["retention"]),
            },
        ),
    )
    for notice in data["webhooks"]["notices"]:
        err.print(f"[yellow]notice:[/] {escape(notice)}", highlight=False, soft_wrap=True)


def _webhooks_text(webhooks: dict[str, Any]) -> str:
    if not webhooks["endpoints"]:
        return "none"
    events, failing = webhooks["events"], len(webhooks["failing"])
    text = f"{webhooks['enabled']} of {webhooks['endpoints']} enabled; {events['pending']} events waiting"
    return text + (f"; {failing} failing now" if failing else "")


def _retention_text(state: dict[str, Any]) -> str:
    """e.g. "deliveries kept 90d; last pass 2026-07-15T12:00:00+00:00, removed so far 12,000
    deliveries, 3,100 delivery_events; months 2026-04..2026-09 (6)"."""
    removed = ", ".join(f"{n:,} {kind}" for kind, n in state["removed"].items() if n) or "nothing"
    text = f"deliveries kept {state['delivery_retention']}; "
    text += (
        f"last pass {state['last_pass']}, removed so far {removed}" if state["last_pass"] else "no pass yet"
    )
    parts = state["partitions"]
    if parts["state"] == "partitioned":
        text += f"; months {parts['first']}..{parts['last']} ({parts['months']})"
    elif parts["state"] == "copying":
        text += "; moving to monthly partitions: run `planner db partition`"
    return text


def _pause_text(pause: dict[str, Any]) -> str:
    text = f"{pause['scope']}:{pause['value']}"
    if pause.get("reason"):
        # e.g. "channel:email (adapter_config: 127.0.0.1:2525 rejected the credentials ...)"
        text += f" ({pause['reason']}: {pause.get('detail') or ''})"
    return text


TargetArgument = Annotated[str, typer.Argument(metavar="CHANNEL|KIND", help="'email', 'sms' or a kind.")]


def pause_command(target: TargetArgument) -> None:
    """Pause a channel or a kind: its deliveries wait (they are not failed) until resumed."""
    from planner.commands import pauses

    with service() as svc, named(target="CHANNEL|KIND"):
        result = pauses.pause(svc, target, svc.clock())
    state = "paused" if result["changed"] else "was already paused"
    err.print(f"{result['scope']} {result['value']} {state}", highlight=False)


def resume_command(target: TargetArgument) -> None:
    """Resume a channel or a kind: the deliveries that waited for it are sent now."""
    from planner.commands import pauses

    with service(redis=True) as svc, named(target="CHANNEL|KIND"):
        result = pauses.resume(svc, target, svc.clock())
    state = "resumed" if result["changed"] else "was not paused"
    err.print(
        f"{result['scope']} {result['value']} {state}; {result['requeued']} waiting deliveries queued",
        highlight=False,
    )


def explain_command(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    date: Annotated[str | None, typer.Option(help="Local date YYYY-MM-DD (default: today there).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Why a recipient got, or did not get, a notification on a local date: every rule's verdict."""
    from planner.cli.tables import explain_grids
    from planner.readmodels.explain import explain

    local_date = parse_option(date, parse_date, "date")
    with service() as svc:
        result = explain(svc, recipient, now=svc.clock(), kind=kind, local_date=local_date)
    if as_json:
        print_json(result)
        return
    if not result["subscriptions"] and not result["adhoc"]:
        out.print(f"{recipient} has no subscriptions and no ad-hoc deliveries on {result['local_date']}")
    print_grids(*explain_grids(result), titles=True)  # a title names the subscription


def _parse_data(value: str) -> dict[str, Any]:
    return _json_object(value, "data", '\'{"code": "123456"}\'')


def _parse_fallback(value: str) -> dict[str, Any]:
    example = '\'{"channel": "sms", "on": ["bounced", "dead"], "within": "2h"}\''
    return _json_object(value, "fallback", example)


def _json_object(value: str, field: str, example: str) -> dict[str, Any]:
    try:
        data = json.loads(value, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput(field, value, f"a JSON object ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidInput(field, value, f"a JSON object such as {example}")
    return data


def notify_command(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    kind: Annotated[str, typer.Argument(help="The notification kind, e.g. password_reset.")],
    channel: Annotated[str, typer.Option(help="email or sms.")],
    dedup_key: Annotated[str | None, typer.Option(help="A repeat with the same key sends nothing.")] = None,
    data: Annotated[str | None, typer.Option(help="Template data as a JSON object.")] = None,
    priority: Annotated[
        str | None, typer.Option(help="high, default or bulk (default: the kind's queue).")
    ] = None,
    at: Annotated[str | None, typer.Option(help="Send at this instant (ISO-8601 with offset).")] = None,
    fallback: Annotated[
        str | None,
        typer.Option(
            help='The channel to try if this one fails, as JSON: {"channel": "sms", "on": ["bounced", '
            '"dead"], "within": "2h"}.'
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send an ad-hoc notification through the planner's rules (dedup, opt-out, caps, quiet hours)."""
    from planner.commands.notify import notify

    payload = parse_option(data, _parse_data, "data")
    rule = parse_option(fallback, _parse_fallback, "fallback")
    when = parse_option(at, lambda v: parse_instant(v, "at"), "at")
    with service(redis=True) as svc, named(recipient_id="RECIPIENT", kind="KIND"):
        result = notify(
            svc,
            recipient,
            kind,
            channel,
            now=svc.clock(),
            dedup_key=dedup_key,
            data=payload,
            priority=priority,
            at=when,
            fallback=rule,
        )
    if as_json:
        print_json(result.as_dict())
        return
    err.print(f"delivery {result.delivery['id']}: {result.message}", highlight=False)


def engagement_record(
    recipient: Annotated[str, typer.Argument(help="The recipient's external id.")],
    event: Annotated[str, typer.Argument(help="opened, clicked or replied.")],
    at: Annotated[
        str | None, typer.Option(help="When it happened (ISO-8601 with offset; default now).")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="The kind engaged with, if known.")] = None,
) -> None:
    """Record an engagement event (it resets the recipient's inactivity for backoff)."""
    from planner.commands import engagement

    when = parse_option(at, lambda v: parse_instant(v, "at"), "at")
    with service() as svc, named(recipient_id="RECIPIENT", event="EVENT"):
        now = svc.clock()
        result = engagement.record_engagement(svc, recipient, event, when or now, now, kind=kind)
    err.print(f"recorded {result['event']} for {recipient} at {result['at']}", highlight=False)


def templates_check(as_json: JsonOption = False) -> None:
    """Render every kind x channel, in every locale folder, with sample data: missing files, syntax
    errors, undefined names.

    Kinds come from the template folders and from active subscriptions. Exit status 1 when something
    subscribed cannot be rendered (a template error in any language, or no default template for the
    channel); the problems of kinds nobody subscribes to are listed, and do not fail the check, nor
    does a locale folder missing a channel (its recipients get the default templates: listed).
    """
    from planner.readmodels.templates import template_checks

    with service() as svc:
        checks, subscribed = template_checks(svc)
    failing = [c for c in checks if c.fatal and (c.kind, c.channel) in subscribed]
    if as_json:
        rows = [c.as_dict() | {"subscriptions": subscribed.get((c.kind, c.channel), 0)} for c in checks]
        print_json({"ok": not failing, "templates": rows})
    else:
        columns = ("kind", "channel", "locale", "status", "subscriptions", "data keys", "problems")
        cells: list[tuple[str, ...]] = []
        for c in checks:
            count = subscribed.get((c.kind, c.channel), 0)
            status = c.status.upper() if c.fatal and count else c.status
            cells.append(
                (c.kind, c.channel, c.locale or "default", status, str(count), ", ".join(c.data_keys),
                 "; ".join(c.problems))
            )  # fmt: skip
        print_grids(Grid("templates (kind x channel x locale)", columns, cells))
    if failing:
        names = [f"{c.kind}/{c.channel}" + (f" ({c.locale})" if c.locale else "") for c in failing[:10]]
        shown = ", ".join(names)
        raise fail(f"{len(failing)} template problem(s): {shown}", code=1)
