"""SVG charts drawn on the server: no script, no external file, readable with styles off.

Every number drawn is also in a ``<title>`` (a tooltip) and in the page's table next to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

from planner.core.wording import duration
from planner.readmodels.dashboard import HourBucket
from planner.readmodels.history import SendBucket

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


def _grid(ticks: list[int], label: Callable[[int], str] = str) -> list[str]:
    """The gridlines and the y axis labels."""
    plot_h, top = HEIGHT - TOP - BOTTOM, ticks[-1]
    parts = []
    for value in ticks:
        y = TOP + plot_h - plot_h * value / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        text = escape(label(value))
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{text}</text>')
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


# ----------------------------------------------------------------------------- history


def throughput_chart(
    buckets: Sequence[SendBucket], size: int, channels: Sequence[str] = ("email", "sms")
) -> Markup:
    """Deliveries sent per bucket of ``size`` seconds, stacked by channel."""
    ticks = _ticks(max([sum(b.sent.values()) for b in buckets] + [1]))
    every = f"{size // 60} min" if size > 60 else "minute"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart" id="throughput-chart" aria-label="Deliveries sent per {every}, by channel">',
        *_grid(ticks),
    ]
    slot, plot_h = (WIDTH - LEFT - RIGHT) / max(len(buckets), 1), HEIGHT - TOP - BOTTOM
    for index, bucket in enumerate(buckets):
        x, y = LEFT + index * slot + slot * 0.1, float(TOP + plot_h)
        for channel in channels:
            count = bucket.sent[channel]
            if count:
                h = plot_h * count / ticks[-1]
                y -= h
                label = f"{bucket.start:%H:%M}Z {channel}: {count} sent"
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
                    f'fill="{_colour(channel)}"><title>{escape(label)}</title></rect>'
                )
    parts += _time_axis(buckets, slot, f"sent per {every} (UTC)")
    for i, channel in enumerate(channels):
        lx = WIDTH - RIGHT - 220 + i * 110
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 16}" width="12" height="12" fill="{_colour(channel)}"/>')
        parts.append(f'<text x="{lx + 16}" y="{HEIGHT - 6}" class="axis">{escape(channel)}</text>')
    return Markup("".join([*parts, "</svg>"]))


#: Steps of a duration axis, in seconds: whole seconds, minutes, hours or days.
_DURATION_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _duration_ticks(longest: float) -> list[int]:
    """Axis ticks from 0 for durations: a step a clock reads well (5 min, 1 h), at most five steps."""
    step = next((s for s in _DURATION_STEPS if s * 5 >= longest), None)
    if step is None:
        step = 86400 * _ticks(int(longest // 86400) + 1)[1]
    top = max(step * -(-int(longest) // step), step)
    return list(range(0, top + 1, step))


def _axis_duration(seconds: int) -> str:
    """A tick's label, short enough for the axis: '2 h', '90 min', '45 s', '2 d'."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def latency_chart(buckets: Sequence[SendBucket]) -> Markup:
    """Per bucket, the longest (light) and the mean (dark) time from due to sent of its sends."""
    ticks = _duration_ticks(max([b.max_seconds or 0.0 for b in buckets] + [1.0]))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'class="chart" id="latency-chart" aria-label="Time from due to sent: mean and longest">',
        *_grid(ticks, _axis_duration),
    ]
    slot, plot_h = (WIDTH - LEFT - RIGHT) / max(len(buckets), 1), HEIGHT - TOP - BOTTOM
    for index, bucket in enumerate(buckets):
        if bucket.max_seconds is None or bucket.mean_seconds is None:
            continue
        x = LEFT + index * slot + slot * 0.1
        for value, fill, what in (
            (bucket.max_seconds, "#b7c9e6", "longest"),
            (bucket.mean_seconds, "#3b6fb6", "mean"),
        ):
            h = max(plot_h * max(value, 0.0) / ticks[-1], 1.0)
            label = f"{bucket.start:%H:%M}Z {what}: {duration(value)} from due to sent"
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
                f'fill="{fill}"><title>{escape(label)}</title></rect>'
            )
    parts += _time_axis(buckets, slot, "time from due to sent (UTC)")
    for i, (what, fill) in enumerate((("longest", "#b7c9e6"), ("mean", "#3b6fb6"))):
        lx = WIDTH - RIGHT - 220 + i * 110
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 16}" width="12" height="12" fill="{fill}"/>')
        parts.append(f'<text x="{lx + 16}" y="{HEIGHT - 6}" class="axis">{what}</text>')
    return Markup("".join([*parts, "</svg>"]))


def _time_axis(buckets: Sequence[SendBucket], slot: float, caption: str) -> list[str]:
    """About ten time labels under the bars, and the caption with the first bucket's date."""
    step = max(len(buckets) // 10, 1)
    parts = [
        f'<text x="{LEFT + i * slot + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
        f'class="axis">{b.start:%H:%M}</text>'
        for i, b in enumerate(buckets)
        if i % step == 0
    ]
    if buckets:
        text = f"{caption} from {buckets[0].start:%Y-%m-%d %H:%MZ}"
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" class="axis">{escape(text)}</text>')
    return parts
