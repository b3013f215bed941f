"""The CLI's tables and ``--json`` rows for ``simulate``: whole values, offsets and notes."""

from __future__ import annotations

import io
import json
from datetime import date

from rich.console import Console

from planner.cli.tables import simulate_table
from planner.readmodels.simulate import to_json_rows
from tests.core.test_simulate import NY, SMS_QUIET, simulate, spec


def test_json_rows() -> None:
    sends = simulate(NY, [spec("02:30")], date(2026, 3, 8), 1)
    rows = to_json_rows(sends)
    assert rows == [
        {
            "kind": "digest",
            "channel": "email",
            "local_date": "2026-03-08",
            "planned_local": "2026-03-08T03:30:00-04:00",
            "send_local": "2026-03-08T03:30:00-04:00",
            "send_at": "2026-03-08T07:30:00+00:00",
            "deferred": False,
            "notes": ["DST gap: 02:30 does not exist, shifted +1:00 to 03:30 EDT"],
        }
    ]
    assert json.loads(json.dumps(rows)) == rows


def test_table() -> None:
    sends = simulate(
        NY,
        [spec("02:30"), spec("21:30", kind="reminder", channel="sms", quiet=SMS_QUIET)],
        date(2026, 3, 7),
        2,
    )
    sends += simulate("Australia/Lord_Howe", [spec("02:15")], date(2026, 10, 4), 1)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(simulate_table(sends, "recipient 42 (America/New_York)"))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "recipient 42 (America/New_York)" in output
    for column in ("Local date", "Kind", "Channel", "Local time", "UTC", "Notes"):
        assert column in output
    assert "03:30 -04:00 EDT" in output
    assert "2026-03-08 07:30Z" in output
    assert "2026-03-08 08:00 -04:00 EDT" in output  # a deferral into the next day shows its date
    assert "02:45 +11:00 " in output and "+11:00 +11" not in output
    assert "DST gap: 02:30 does not exist, shifted +1:00 to 03:30 EDT" in output
