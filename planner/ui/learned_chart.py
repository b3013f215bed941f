"""A learned send time's statistic as a server-drawn SVG (the dashboard's recipient page).

As the other charts (:mod:`planner.ui.charts`): no script, no external file; every number drawn is
also in a ``<title>`` and in the page's table beside it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

from planner.ui.charts import BOTTOM, LEFT, RIGHT, TOP

LEARNED_WIDTH, LEARNED_HEIGHT = 560, 180
_LEARNED_COLOURS = {"chosen": "#3b6fb6", "slot": "#9fb6d6", "quiet": "#d5d9df", "past": "#eceff3"}
_STATE_NOTES = {
    "chosen": " (chosen)",
    "slot": "",
    "quiet": " (quiet hours: left out)",
    "past": " (past: left out)",
}


def learned_chart(learned: dict[str, Any]) -> Markup:
    """A learned send time's statistic: a bar per half hour of the window (the recency-weighted
    engagement, as ``explain`` gives it), the chosen slot in the accent colour, the slots left out
    (quiet hours, already past) greyed, the default marked under the axis."""
    decided = learned["recorded"] or learned["choice"]
    rows = learned["histogram"]
    left_out = {s: "quiet" for s in decided.get("quiet_slots", [])}
    left_out |= {s: "past" for s in decided.get("past_slots", [])}
    ticks = _learned_ticks(max([row["weight"] for row in rows] + [learned["threshold"] / 4]))
    plot_w, plot_h = LEARNED_WIDTH - LEFT - RIGHT, LEARNED_HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(rows), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {LEARNED_WIDTH} {LEARNED_HEIGHT}" role="img" '
        f'class="chart learned" aria-label="Engagement by local half hour, {escape(learned["window"])}">'
    ]
    right = LEARNED_WIDTH - RIGHT
    for value in ticks:
        y = TOP + plot_h - plot_h * value / ticks[-1]
        parts.append(f'<line x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{value:g}</text>')
    for index, row in enumerate(rows):
        state = "chosen" if row["slot"] == decided["chosen"] else left_out.get(row["slot"], "slot")
        x = LEFT + index * slot + slot * 0.1
        h = max(plot_h * row["weight"] / ticks[-1], 1.0 if state != "slot" else 0.0)
        label = f"{row['slot']}: weight {row['weight']:.2f}, {row['events']} event(s){_STATE_NOTES[state]}"
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
            f'fill="{_LEARNED_COLOURS[state]}" class="slot {state}" data-slot="{row["slot"]}">'
            f"<title>{escape(label)}</title></rect>"
        )
        if index % 4 == 0:
            parts.append(
                f'<text x="{x + slot * 0.4:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" '
                f'class="axis">{row["slot"]}</text>'
            )
        if row["slot"] <= learned["default"] < _slot_end(row["slot"]):
            parts.append(
                f'<text x="{x + slot * 0.4:.1f}" y="{TOP + plot_h + 28}" text-anchor="middle" '
                f'class="axis default">▲ default {escape(learned["default"])}</text>'
            )
    parts.extend(_learned_legend())
    parts.append("</svg>")
    return Markup("".join(parts))


def _learned_legend() -> list[str]:
    parts = []
    for i, (state, text) in enumerate((("chosen", "chosen"), ("quiet", "quiet hours"), ("past", "past"))):
        x = LEARNED_WIDTH - RIGHT - 250 + i * 85
        fill = _LEARNED_COLOURS[state]
        parts.append(f'<rect x="{x}" y="{TOP - 12}" width="10" height="10" fill="{fill}"/>')
        parts.append(f'<text x="{x + 14}" y="{TOP - 3}" class="axis">{text}</text>')
    return parts


def _slot_end(start: str) -> str:
    hours, minutes = (int(part) for part in start.split(":"))
    end = hours * 60 + minutes + 30
    return f"{end // 60:02d}:{end % 60:02d}"


def _learned_ticks(top: float) -> list[float]:
    """Gridlines from 0 for weights (fractions): four steps of a round size reaching ``top``."""
    step = 0.25
    while step * 4 < top:
        step *= 2
    return [step * i for i in range(5)]
