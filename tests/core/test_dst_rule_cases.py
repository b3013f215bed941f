"""Named DST cases for monthly and yearly rules (fixtures/dst_rule_cases.json, shown in
docs/how-to/schedules.md)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from planner.core.cadence import Cadence, occurrences_between
from planner.core.localtime import UTC, to_local

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "dst_rule_cases.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_rule_occurrences_follow_the_dst_policy(case: dict[str, Any]) -> None:
    cadence = Cadence.parse(case["at"], rrule=case["rrule"])
    start = datetime.fromisoformat(case["from"]).replace(tzinfo=UTC)
    found = []
    for occurrence in occurrences_between(cadence, case["zone"], start, start + timedelta(days=366 * 8)):
        found.append(
            {
                "local_date": occurrence.local_date.isoformat(),
                "utc": occurrence.instant.isoformat(),
                "local": to_local(occurrence.instant, case["zone"]).isoformat(),
                "adjustment": occurrence.adjustment,
            }
        )
        if len(found) == len(case["expected"]):
            break
    assert found == case["expected"]


def test_a_date_without_an_occurrence_says_why() -> None:
    cadence = Cadence.parse("09:00", rrule="FREQ=MONTHLY;BYMONTHDAY=31", end_date=date(2026, 12, 31))
    assert not cadence.matches(date(2026, 4, 30))
    assert cadence.why_not(date(2026, 4, 30)) == "not one of its dates (on the 31st of every month)"
    assert cadence.why_not(date(2027, 1, 31)) == "after the end date 2026-12-31"
