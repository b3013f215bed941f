"""Terminal tables for what the read models return: ``explain`` and ``simulate``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from planner.core.localtime import UTC, format_offset, hhmm
from planner.core.simulate import SimulatedSend


def explain_tables(result: dict[str, Any]) -> list[Table]:
    """One table per subscription (rule, verdict, detail), then one for ad-hoc deliveries."""
    tables = []
    for sub in result["subscriptions"]:
        table = Table(
            title=f"{result['recipient_id']} · {sub['kind']} by {sub['channel']} · {result['local_date']} "
            f"({result['timezone']}) → {sub['outcome']}"
        )
        for column in ("rule", "verdict", "detail"):
            table.add_column(column)
        for v in sub["verdicts"]:
            table.add_row(v["rule"], v["verdict"], v["detail"])
        tables.append(table)
        if sub.get("learned_time"):
            tables.append(_learned_table(sub["learned_time"]))
    if result["adhoc"]:
        tables.append(_adhoc_table(result))
    return tables


def _learned_table(learned: dict[str, Any]) -> Table:
    """A learned send time's statistic over its window, a bar per half hour; the chosen slot, and
    those left out (quiet hours, already past), marked."""
    decided = learned["recorded"] or learned["choice"]
    left_out = {s: "quiet hours" for s in decided.get("quiet_slots", [])}
    left_out |= {s: "past" for s in decided.get("past_slots", [])}
    table = Table(
        title=f"engagement by half hour {learned['window']}: {decided['basis']} {decided['chosen']}",
        caption=f"local times; recency-weighted (half-life {learned['half_life_days']} days) as of "
        f"{learned['as_of']}; default {learned['default']} under {learned['threshold']:g}",
    )
    for column in ("slot", "weight", "events", ""):
        table.add_column(column)
    top = max([row["weight"] for row in learned["histogram"]] + [1e-9])
    for row in learned["histogram"]:
        mark = "← chosen" if row["slot"] == decided["chosen"] else left_out.get(row["slot"], "")
        bar = "█" * round(20 * row["weight"] / top)
        table.add_row(row["slot"], f"{row['weight']:.2f}", str(row["events"]), f"{bar} {mark}".strip())
    return table


def _adhoc_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"ad-hoc deliveries on {result['local_date']}")
    for column in ("id", "kind", "channel", "scheduled (UTC)", "status", "reason", "attempts", "fallback"):
        table.add_column(column)
    for d in result["adhoc"]:
        table.add_row(
            str(d["id"]),
            d["kind"],
            d["channel"],
            d["scheduled_at"],
            d["status"],
            d["reason"] or "",
            str(d["attempts"]),
            d.get("fallback_note") or "",
        )
    return table


def simulate_table(sends: Sequence[SimulatedSend], title: str) -> Table:
    table = Table(title=title)
    for column in ("Local date", "Kind", "Channel", "Local time", "UTC", "Notes"):
        table.add_column(column)
    for send in sends:
        table.add_row(
            send.local_date.isoformat(),
            send.kind,
            send.channel,
            _local_cell(send),
            send.send_at.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"),
            "\n".join(send.notes),
        )
    return table


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
