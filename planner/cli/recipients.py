"""Find recipients: ``planner recipients list`` (the search and filters of ``GET /v1/recipients``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from planner.cli.common import Grid, JsonOption, err, named, print_grids, print_json, service


def recipients_list(
    search: Annotated[
        str | None,
        typer.Option("--search", "-q", help="An email address, a phone number or the start of an id."),
    ] = None,
    id_prefix: Annotated[str | None, typer.Option(help="The start of the id (exact case).")] = None,
    email: Annotated[str | None, typer.Option(help="An email address (any case).")] = None,
    phone: Annotated[str | None, typer.Option(help="A phone number, with or without separators.")] = None,
    zone: Annotated[str | None, typer.Option(help="Only recipients in this IANA time zone.")] = None,
    opted_out: Annotated[
        str | None,
        typer.Option(metavar="email|sms|any", help="Opted out of the channel (or of a kind on it)."),
    ] = None,
    invalid: Annotated[
        str | None, typer.Option(metavar="email|sms|any", help="With the channel's address marked invalid.")
    ] = None,
    after: Annotated[str | None, typer.Option(help="The last id of the previous page.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="At most this many (a page).")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Find recipients by id prefix, email or phone (exact, normalised) with filters, in id order."""
    from planner.core.recipient_search import RecipientSearch
    from planner.readmodels.recipients import list_recipients

    fields = {"q": "--search", "after": "--after"}
    with named(**fields):
        wanted = RecipientSearch.parse(
            q=search, id_prefix=id_prefix, email=email, phone=phone, zone=zone, opted_out=opted_out,
            invalid=invalid,
        )  # fmt: skip
    with service() as svc, named(**fields), svc.sessions() as session:
        page = list_recipients(session, wanted, after, limit)
    if as_json:
        print_json(page.as_dict())
        return
    columns = ("id", "zone", "email", "phone", "opted out", "invalid", "subscriptions")
    rows = [
        (
            row["id"], row["timezone"], row["email"] or "", row["phone"] or "", _opted_out(row),
            _invalid(row), str(row["subscriptions"]),
        )
        for row in page.rows
    ]  # fmt: skip
    print_grids(Grid(f"{len(rows)} recipients", columns, rows))
    if page.next_after is not None:
        err.print(f"more: --after {page.next_after}", highlight=False)


def _opted_out(row: dict[str, Any]) -> str:
    parts = []
    for channel, p in row["preferences"].items():
        if p["opted_out"]:
            parts.append(f"all {channel}")
        parts.extend(f"{kind} on {channel}" for kind in p["opted_out_kinds"])
    return ", ".join(parts) or "no"


def _invalid(row: dict[str, Any]) -> str:
    return ", ".join(f"{channel}: {why}" for channel, why in row["invalid"].items() if why) or "no"
