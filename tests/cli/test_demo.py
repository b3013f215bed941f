"""The README's first command: ``planner demo`` on the embedded default, from an empty directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_service_and_leaves_nothing_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    # The README installs the demo without the test extras: pytest must not be needed.
    without_pytest = (
        "import sys; sys.modules['pytest'] = None; "
        "from planner.cli import main; sys.argv[0] = 'planner'; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_pytest, "demo", "--dir", str(tmp_path / "demo"), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["recipients"] == 300 and summary["planner_runs"] >= 48
    assert summary["sent_by_channel"]["email"] > 100 and summary["sent_by_channel"]["sms"] > 10
    assert summary["skipped_by_backoff"] > 0 and summary["deferred_by_quiet_hours"] > 0
    new_york = [e for e in summary["dst_adjustments"] if e["zone"] == "America/New_York"]
    assert new_york and all(e["wall_time"] == "02:30" and e["resolved"] == "03:30 EDT" for e in new_york)
    for channel, path in summary["outbox"].items():
        lines = Path(path).read_text().splitlines()
        assert len(lines) == summary["sent_by_channel"][channel]
        assert {json.loads(line)["channel"] for line in lines} == {channel}
    # Each email's footer prints the link its List-Unsubscribe header carries.
    emails = [json.loads(line) for line in Path(summary["outbox"]["email"]).read_text().splitlines()]
    for email in emails:
        link = email["headers"]["List-Unsubscribe"].removeprefix("<").removesuffix(">")
        assert link.startswith("http://127.0.0.1:8000/u/"), email
        assert email["body"].rstrip().endswith(f"Unsubscribe from these emails: {link}"), email["body"]
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == "", "the demo left a process running"
