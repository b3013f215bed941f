"""The tables of what the read models return: ``explain`` and ``simulate`` (printed by
:func:`planner.cli.common.print_grids`: rich's tables on a terminal, whole values in a pipe)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from planner.cli.common import Grid
from planner.core.localtime import UTC, format_offset, hhmm
from planner.core.simulate import SimulatedSend


def explain_grids(result: dict[str, Any]) -> list[Grid]:
    """One table per subscription (rule, verdict, detail), then one for ad-hoc deliveries."""
    grids = []
    for sub in result["subscriptions"]:
        title = (
            f"{result['recipient_id']} · {sub['kind']} by {sub['channel']} · {result['local_date']} "
            f"({result['timezone']}) → {sub['outcome']}"
        )
        rows = [(v["rule"], v["verdict"], v["detail"]) for v in sub["verdicts"]]
        grids.append(Grid(title, ("rule", "verdict", "detail"), rows))
        if sub.get("learned_time"):
            grids.append(_learned_grid(sub["learned_time"]))
    if result["adhoc"]:
        grids.append(_adhoc_grid(result))
    return grids


def _learned_grid(learned: dict[str, Any]) -> Grid:
    """A learned send time's statistic over its window, a bar per half hour; the chosen slot, and
    those left out (quiet hours, already past), marked."""
    decided = learned["recorded"] or learned["choice"]
    left_out = {s: "quiet hours" for s in decided.get("quiet_slots", [])}
    left_out |= {s: "past" for s in decided.get("past_slots", [])}
    title = (
        f"engagement by half hour {learned['window']}: {decided['basis']} {decided['chosen']} (local times;"
        f" recency-weighted, half-life {learned['half_life_days']} days, as of {learned['as_of']};"
        f" default {learned['default']} under {learned['threshold']:g})"
    )
    top = max([row["weight"] for row in learned["histogram"]] + [1e-9])
    rows = []
    for row in learned["histogram"]:
        mark = "← chosen" if row["slot"] == decided["chosen"] else left_out.get(row["slot"], "")
        bar = "█" * round(20 * row["weight"] / top)
        rows.append((row["slot"], f"{row['weight']:.2f}", str(row["events"]), f"{bar} {mark}".strip()))
    return Grid(title, ("slot", "weight", "events", "chart"), rows)


def _adhoc_grid(result: dict[str, Any]) -> Grid:
    columns = ("id", "kind", "channel", "scheduled (UTC)", "status", "reason", "attempts", "fallback")
    rows = [
        (str(d["id"]), d["kind"], d["channel"], d["scheduled_at"], d["status"], d["reason"] or "",
         str(d["attempts"]), d.get("fallback_note") or "")
        for d in result["adhoc"]
    ]  # fmt: skip
    return Grid(f"ad-hoc deliveries on {result['local_date']}", columns, rows)


def simulate_grid(sends: Sequence[SimulatedSend], title: str) -> Grid:
    """One row per send; in a pipe a send's notes are one cell, separated by '; '."""
    rows = [
        (send.local_date.isoformat(), send.kind, send.channel, _local_cell(send),
         send.send_at.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"), "\n".join(send.notes))
        for send in sends
    ]  # fmt: skip
    return Grid(title, ("Local date", "Kind", "Channel", "Local time", "UTC", "Notes"), rows)


def simulate_table(sends: Sequence[SimulatedSend], title: str) -> Table:
    return simulate_grid(sends, title).table()


def _local_cell(send: SimulatedSend) -> str:
    """'03:30 -04:00 EDT'; the date is added when a deferral moved the send to another day."""
    local = send.send_local
    text = f"{hhmm(local)} {format_offset(local.utcoffset())}"
    name = local.tzname()
    # Zones without an abbreviation are named by their offset ('+11'), already shown.
    if name and name[0] not in "+-":
        text += f" {name}"
    if local.date() != send.local_date:
        text = f"{local.date().isoformat()} {text}"
    return text
