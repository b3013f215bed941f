"""The ``planner`` command line.

Configuration comes from ``PLANNER_*`` environment variables (and an optional ``planner.toml``);
the list is in ``planner --help``. Human output is tables and progress bars on a terminal; every
command that reports has ``--json`` for machines. Errors name the field, value and expectation.

This module only wires the commands, which live in modules by topic; what they share is in
:mod:`planner.cli.common`.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from planner.cli import (
    data,
    deliveries,
    demo,
    digests,
    ops,
    planning,
    recipients,
    retention,
    serve,
    tokens,
    webhooks,
    worker,
)
from planner.cli.common import TextCheckedCommand, debug_enabled
from planner.errors import shown

__all__ = ["app", "main"]


class _LazyHelpGroup(TyperGroup):
    """Builds the settings help when it is shown: loading every adapter plugin costs ~0.2 s,
    which no other command should pay."""

    def format_help(self, ctx: Any, formatter: Any) -> None:  # typer's vendored click types
        if not self.help:
            from planner.cli.help_text import settings_help

            self.help = settings_help()
        super().format_help(ctx, formatter)


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True)


app = typer.Typer(
    cls=_LazyHelpGroup,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"max_content_width": 120},
)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors (PLANNER_DEBUG=1).")
    ] = False,
) -> None:
    if debug:
        os.environ["PLANNER_DEBUG"] = "1"


db_app = _group("Database schema.")
deliveries_app = _group("Inspect and manage deliveries.")
engagement_app = _group("Record engagement (opens, clicks, replies).")
events_app = _group("Digest events: what a digest subscription's next message lists.")
recipients_app = _group("Find recipients.")
templates_app = _group("Message templates.")
tokens_app = _group("API tokens: named, with scopes (read, write, admin).")
webhooks_app = _group("Outgoing webhooks: endpoints that receive the service's events, signed.")
app.add_typer(db_app, name="db")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(engagement_app, name="engagement")
app.add_typer(events_app, name="events")
app.add_typer(recipients_app, name="recipients")
app.add_typer(templates_app, name="templates")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")

db_app.command("upgrade")(data.db_upgrade)
db_app.command("partition")(retention.partition_command)
app.command("import")(data.import_command)
app.command("run")(planning.run_command)
app.command("simulate")(planning.simulate_command)
deliveries_app.command("list")(deliveries.deliveries_list)
deliveries_app.command("show")(deliveries.deliveries_show)
deliveries_app.command("retry")(deliveries.deliveries_retry)
deliveries_app.command("cancel")(deliveries.deliveries_cancel)
app.command("status")(ops.status_command)
app.command("prune")(retention.prune_command)
app.command("pause")(ops.pause_command)
app.command("resume")(ops.resume_command)
app.command("explain")(ops.explain_command)
app.command("notify")(ops.notify_command)
engagement_app.command("record")(ops.engagement_record)
events_app.command("record")(digests.events_record)
recipients_app.command("list")(recipients.recipients_list)
app.command("snooze")(digests.snooze_command)
templates_app.command("check")(ops.templates_check)
tokens_app.command("create")(tokens.tokens_create)
tokens_app.command("list")(tokens.tokens_list)
tokens_app.command("revoke")(tokens.tokens_revoke)
webhooks_app.command("add")(webhooks.webhooks_add)
webhooks_app.command("list")(webhooks.webhooks_list)
webhooks_app.command("show")(webhooks.webhooks_show)
webhooks_app.command("update")(webhooks.webhooks_update)
webhooks_app.command("remove")(webhooks.webhooks_remove)
webhooks_app.command("rotate-secret")(webhooks.webhooks_rotate_secret)
webhooks_app.command("redeliver")(webhooks.webhooks_redeliver)
webhooks_app.command("attempts")(webhooks.webhooks_attempts)
app.command("serve")(serve.serve_command)
app.command("cron")(serve.cron_command)
app.command("worker")(worker.worker_command)
app.command("demo")(demo.demo_command)


def _check_text(group: typer.Typer) -> None:
    """Every command of ``group`` and its sub-groups checks its text arguments before it runs."""
    for command in group.registered_commands:
        assert command.cls in (None, TyperCommand), "a command with its own class checks its text itself"
        command.cls = TextCheckedCommand
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        _check_text(sub.typer_instance)


_check_text(app)


def main() -> None:
    try:
        app()
    except Exception as exc:
        # Whatever escaped every command's own error path: still one line, unless debugging.
        if debug_enabled():
            raise
        raise SystemExit(
            f"error: internal error {type(exc).__name__}: {shown(str(exc))}; "
            "PLANNER_DEBUG=1 shows the traceback"
        ) from None
