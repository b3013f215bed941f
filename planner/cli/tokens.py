"""API tokens: create (the plain token is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli.common import Grid, JsonOption, err, fail, named, out, print_grids, print_json, service

NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="The token's name, recorded on its changes.")
]


def tokens_create(
    name: NameArgument,
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="read, write or admin; repeat the option or give a comma list."),
    ],
    as_json: JsonOption = False,
) -> None:
    """Create a named API token with scopes. The token is shown once: only its hash is stored."""
    from planner.auth import create_token

    with service() as svc, named(name="NAME", scope="--scope"):
        token = create_token(svc, name, scope, svc.clock())
    if as_json:
        print_json({"name": name, "token": token})
        return
    # The token alone on stdout, so `TOKEN=$(planner tokens create ...)` works; the advice on stderr.
    typer.echo(token)
    err.print(f"token {name!r} created; it is shown only now: store it in a secret manager")


def tokens_list(as_json: JsonOption = False) -> None:
    """The named API tokens and their scopes (never the tokens themselves)."""
    from planner.auth import list_tokens

    with service() as svc:
        rows = list_tokens(svc)
    if as_json:
        print_json(rows)
        return
    cells = [(row["name"], ",".join(row["scopes"]), row["created_at"].isoformat()) for row in rows]
    print_grids(Grid("API tokens", ("name", "scopes", "created_at"), cells))


def tokens_revoke(name: NameArgument) -> None:
    """Revoke a token: it stops working at once, and its dashboard sessions end."""
    from planner.auth import revoke_token

    with service() as svc:
        ended = revoke_token(svc, name, svc.clock())
    if ended is None:
        raise fail(f"NAME: no token named {name!r}; `planner tokens list` shows them", code=2)
    sessions = f"{ended} dashboard session{'s' if ended != 1 else ''} ended"
    out.print(f"token {name!r} revoked; {sessions}", highlight=False)
