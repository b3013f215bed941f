"""SVG charts drawn on the server: no script, no external file, readable with styles off.

Every number drawn is also in a ``<title>`` (a tooltip) and in the page's table next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

from planner.readmodels.dashboard import HourBucket

COLOURS = {"email": "#3b6fb6", "sms": "#d9822b"}
WIDTH, HEIGHT = 880, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 40


def _ticks(value: int) -> list[int]:
    """Axis ticks from 0: a step of 1, 2 or 5 times a power of ten, four or five steps to the top."""
    step = 1
    while step * 5 < value:
        step = step * 2 if str(step)[0] == "1" else step * 5 // 2 if str(step)[0] == "2" else step * 2
    top = max(step * -(-value // step), step)
    return list(range(0, top + 1, step))


def sends_chart(buckets: Sequence[HourBucket], channels: Sequence[str] = ("email", "sms")) -> Markup:
    """Stacked bars per hour (UTC) and channel; the part deferred there by quiet hours is hatched."""
    ticks = _ticks(max([sum(b.sends.values()) for b in buckets] + [1]))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart" aria-label="Sends per hour for the next {len(buckets)} hours, by channel">',
        *_hatches(channels),
        *_grid(ticks),
        *_bars(buckets, channels, ticks[-1]),
        *_legend(buckets, channels),
        "</svg>",
    ]
    return Markup("".join(parts))


def _colour(channel: str) -> str:
    return COLOURS.get(channel, "#777")


def _hatches(channels: Sequence[str]) -> list[str]:
    """One hatch pattern per channel: its colour with white stripes, for deferred sends."""
    return [
        "<defs>",
        *(
            f'<pattern id="hatch-{c}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{_colour(c)}"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="3"/></pattern>'
            for c in channels
        ),
        "</defs>",
    ]


def _grid(ticks: list[int]) -> list[str]:
    """The gridlines and the y axis labels."""
    plot_h, top = HEIGHT - TOP - BOTTOM, ticks[-1]
    parts = []
    for value in ticks:
        y = TOP + plot_h - plot_h * value / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{value}</text>')
    return parts


def _bars(buckets: Sequence[HourBucket], channels: Sequence[str], top: int) -> list[str]:
    """Each hour's stack, channel by channel (sent as planned, then deferred), and every other
    hour's label under it."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(buckets), 1)
    parts = []
    for index, bucket in enumerate(buckets):
        x = LEFT + index * slot + slot * 0.12
        y: float = TOP + plot_h
        for channel in channels:
            plain = bucket.sends[channel] - bucket.deferred[channel]
            for count, fill in (
                (plain, _colour(channel)),
                (bucket.deferred[channel], f"url(#hatch-{channel})"),
            ):
                if not count:
                    continue
                h = plot_h * count / top
                y -= h
                label = f"{bucket.start:%H:%M}Z {channel}: {count}"
                if fill.startswith("url"):
                    label += " deferred by quiet hours"
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.76:.1f}" height="{h:.1f}" fill="{fill}">'
                    f"<title>{escape(label)}</title></rect>"
                )
        if index % 2 == 0:
            parts.append(
                f'<text x="{x + slot * 0.38:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                f'class="axis">{bucket.start:%H}</text>'
            )
    return parts


def _legend(buckets: Sequence[HourBucket], channels: Sequence[str]) -> list[str]:
    """The x axis caption, then a swatch per channel and one for deferred sends."""
    parts = []
    if buckets:
        since = f"{buckets[0].start:%Y-%m-%d %H:%MZ}"
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" class="axis">hour (UTC) from {since}</text>')
    legend_x = WIDTH - RIGHT - 330
    for i, channel in enumerate(channels):
        lx = legend_x + i * 110
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 16}" width="12" height="12" fill="{_colour(channel)}"/>')
        parts.append(f'<text x="{lx + 16}" y="{HEIGHT - 6}" class="axis">{escape(channel)}</text>')
    parts.append(
        f'<rect x="{legend_x + 220}" y="{HEIGHT - 16}" width="12" height="12" fill="url(#hatch-sms)"/>'
    )
    parts.append(f'<text x="{legend_x + 236}" y="{HEIGHT - 6}" class="axis">deferred</text>')
    return parts


def bar(value: int, total: int, colour: str = "#3b6fb6", width: int = 160) -> Markup:
    """A small horizontal bar for a table cell: ``value`` as a share of ``total``."""
    share = value / total if total else 0.0
    return Markup(
        f'<svg width="{width}" height="10" viewBox="0 0 {width} 10" aria-hidden="true" class="minibar">'
        f'<rect width="{width}" height="10" fill="#eceff3"/>'
        f'<rect width="{max(share * width, 1 if value else 0):.1f}" height="10" fill="{colour}"/></svg>'
    )


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
