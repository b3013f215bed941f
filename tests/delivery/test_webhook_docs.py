"""The receiver the docs show (docs/how-to/outgoing-webhooks.md) runs as written: started as its own
process, it verifies what the sender posts, prints each event once, and refuses a forged one."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from planner.app import App, build_webhook_sender
from planner.commands import webhooks
from planner.settings import Settings
from tests.servers import free_port
from tests.webhook_support import outbox, send_notifications

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "outgoing-webhooks.md"


def receiver_source() -> str:
    section = PAGE.read_text().split("## Verify a webhook", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "the page shows a receiver"
    return found.group(1)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def hook_app(settings: Settings) -> Iterator[App]:
    app = App(
        settings.model_copy(update={"webhooks_allow_private": True, "webhooks_timeout": timedelta(seconds=5)})
    )
    yield app
    app.close()


def test_the_documented_receiver_verifies_and_deduplicates(hook_app: App, tmp_path: Path) -> None:
    port = free_port()
    created, secret = webhooks.register(
        hook_app, f"http://127.0.0.1:{port}/", ["delivery.sent"], now=hook_app.clock()
    )
    script = tmp_path / "receiver.py"
    script.write_text(receiver_source())
    log = tmp_path / "receiver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(script)],
            env={"WEBHOOK_SECRET": secret, "PORT": str(port), "PATH": "/usr/bin:/bin"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not listening(port):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        send_notifications(hook_app)
        sender = build_webhook_sender(hook_app)
        try:
            sender.drain()
            [row] = outbox(hook_app)
            webhooks.redeliver(hook_app, row["id"], now=hook_app.clock())
            sender.drain()
        finally:
            sender.close()
        forged = httpx.post(
            f"http://127.0.0.1:{port}/",
            content=row["payload"],
            headers={
                "webhook-id": "msg_x",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAA",
            },
        )
        assert forged.status_code == 400
    finally:
        process.terminate()
        process.wait(10)
    assert [a["status_code"] for a in webhooks.attempts(hook_app, created["id"])] == [204, 204]
    printed = [line for line in log.read_text().splitlines() if line.startswith("delivery.")]
    assert len(printed) == 1 and printed[0].startswith("delivery.sent {'delivery_id': 1,"), log.read_text()


def test_the_documented_schemas_are_the_published_ones() -> None:
    import json

    from planner.core.webhook_schemas import DATA_SCHEMAS

    section = PAGE.read_text().split("## JSON Schemas of `data`", 1)[1]
    found = re.search(r"```json\n(.*?)```", section, re.S)
    assert found is not None
    assert json.loads(found.group(1)) == DATA_SCHEMAS
