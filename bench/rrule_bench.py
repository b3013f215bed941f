"""Recurrence rules: how long a parse and a "next date" take for the worst rules we can construct.

``RecurrenceRule.parse`` proves that a rule has a date (or refuses it) with a bounded walk; the
planner asks ``first_on_or_after`` once per occurrence. This prints, per rule, the median of
``--repeats`` runs in CPU milliseconds of this process (the machine is shared: wall time under
load says more about the neighbours than about the code; ``--wall`` measures wall time instead):

- ``parse cold``: with the per-shape caches emptied first (a rule shape never seen by the process),
- ``parse warm``: the same rule again (another subscription with the same rule and start date),
- ``next``: ``first_on_or_after`` from dates spread over the rule's life (every year to 9998).

The named rules are the hostile corpus's (rules that never occur, sparse COUNT rules, rules whose
dates are decades apart); then ``--search`` random rules (fixed seed) are timed once each and the
slowest are measured again like the named ones.

    .venv/bin/python bench/rrule_bench.py [--repeats 7] [--search 3000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.core import rrule_expansion
from planner.core.recurrence import RecurrenceRule
from planner.errors import InvalidInput

START = date(2026, 3, 3)
NAMED = [
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6",
    "FREQ=WEEKLY;BYMONTH=2;BYDAY=MO;BYSETPOS=2",
    "FREQ=MONTHLY;INTERVAL=2;BYDAY=-4FR,-5SA,3SU;BYSETPOS=-60",
    "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=DAILY;INTERVAL=7;BYDAY=MO",
    "FREQ=MONTHLY;INTERVAL=12;BYMONTH=4",
    "FREQ=DAILY;UNTIL=20260304;BYMONTH=5",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;COUNT=1000",
    "FREQ=DAILY;COUNT=1000",
    "FREQ=DAILY;INTERVAL=400;BYDAY=WE;BYMONTH=11",
    "FREQ=DAILY;INTERVAL=997;BYMONTHDAY=13;BYDAY=FR",
    "FREQ=WEEKLY;INTERVAL=52;BYMONTH=4",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _random_rule(rng: random.Random) -> str:
    freq = rng.choice(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
    parts = [f"FREQ={freq}"]
    if rng.random() < 0.8:
        parts.append(f"INTERVAL={rng.choice([2, 3, 7, 12, 13, 27, 52, 53, 366, 400, 773, 997, 1000])}")
    if rng.random() < 0.7:
        ordinal = freq in ("MONTHLY", "YEARLY") and rng.random() < 0.5
        top = 53 if freq == "YEARLY" and rng.random() < 0.5 else 5
        days = rng.sample(DAYS, rng.randint(1, 3))
        prefix = (lambda: f"{rng.choice([1, -1]) * rng.randint(1, top)}") if ordinal else (lambda: "")
        parts.append("BYDAY=" + ",".join(prefix() + d for d in days))
    if freq != "WEEKLY" and rng.random() < 0.6:
        parts.append("BYMONTHDAY=" + ",".join(map(str, rng.sample([1, 13, 29, 30, 31, -1, -29, -31], 2))))
    if rng.random() < 0.6:
        parts.append("BYMONTH=" + ",".join(map(str, rng.sample(range(1, 13), rng.randint(1, 2)))))
    if rng.random() < 0.5:
        parts.append("BYSETPOS=" + ",".join(map(str, rng.sample([1, 2, -1, 5, -7, 60, 366], 1))))
    if rng.random() < 0.3:
        parts.append("WKST=" + rng.choice(DAYS))
    if rng.random() < 0.4:
        parts.append(f"COUNT={rng.choice([1000, rng.randint(1, 1000)])}")
    return ";".join(parts)


def _parse(rule: str, start: date) -> RecurrenceRule | None:
    try:
        return RecurrenceRule.parse(rule, start)
    except InvalidInput:
        return None


def _cold() -> None:
    rrule_expansion.year_dates.cache_clear()
    rrule_expansion.first_week.cache_clear()


CLOCK = time.process_time


def _median_ms(run: Callable[[], object], repeats: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = CLOCK()
        run()
        times.append(CLOCK() - started)
    return statistics.median(times) * 1000


def measure(rule: str, start: date, repeats: int) -> dict[str, Any]:
    parsed = _parse(rule, start)
    row: dict[str, Any] = {"rule": rule, "start": start.isoformat(), "accepted": parsed is not None}
    row["parse_cold_ms"] = _median_ms(lambda: _parse(rule, start), repeats, _cold)
    row["parse_warm_ms"] = _median_ms(lambda: _parse(rule, start), repeats)
    if parsed is not None:
        points = [date(y, 1, 1) for y in range(start.year + 1, 9999, 97)]
        per_call = [_median_ms(lambda d=d: parsed.first_on_or_after(d), repeats) for d in points]  # type: ignore[misc]
        row["next_median_ms"], row["next_max_ms"] = statistics.median(per_call), max(per_call)
    return row


def search(count: int) -> list[tuple[str, date]]:
    """The five random rules (seed 1) whose cold parse took longest, timed once each."""
    rng, timed = random.Random(1), []
    for _ in range(count):
        rule = _random_rule(rng)
        start = date(rng.randint(1900, 2100), rng.randint(1, 12), rng.randint(1, 28))
        timed.append((_median_ms(lambda r=rule, s=start: _parse(r, s), 1, _cold), rule, start))  # type: ignore[misc]
    return [(rule, start) for _, rule, start in sorted(timed, reverse=True)[:5]]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--search", type=int, default=3000, help="random rules to search (0: none)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.wall else time.process_time
    cases = [(rule, START) for rule in NAMED] + search(args.search)
    rows = [measure(rule, start, args.repeats) for rule, start in cases]
    if args.json:
        print(json.dumps({"load_average": os.getloadavg(), "rows": rows}, indent=2))
        return 0
    clock = "wall" if args.wall else "CPU"
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} runs, {clock} milliseconds")
    print(f"{'cold':>7} {'warm':>7} {'next':>7} {'next max':>8}  rule (start)")
    for row in rows:
        nxt = "refused".rjust(16)
        if row["accepted"]:
            nxt = f"{row['next_median_ms']:7.3f} {row['next_max_ms']:8.3f}"
        parse = f"{row['parse_cold_ms']:7.2f} {row['parse_warm_ms']:7.2f}"
        print(f"{parse} {nxt}  {row['rule']} ({row['start']})")
    worst = max(rows, key=lambda r: r["parse_cold_ms"])
    slowest = max((r for r in rows if r["accepted"]), key=lambda r: r["next_max_ms"])
    print(f"worst parse {worst['parse_cold_ms']:.2f} ms: {worst['rule']} ({worst['start']})")
    print(f"worst next date {slowest['next_max_ms']:.2f} ms: {slowest['rule']} ({slowest['start']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
