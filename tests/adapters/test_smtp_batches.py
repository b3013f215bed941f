"""The worker's batches through the SMTP adapter: one session per batch, counted at a real
aiosmtpd server (connections by the client's port, RSET and QUIT as the server saw them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.capture import CaptureAdapter
from adapters.smtp import SmtpAdapter
from planner.app import App, build_deliverer
from planner.commands.notify import notify
from planner.store.queries import get_delivery
from tests.commands.test_ops import add_recipient

if TYPE_CHECKING:
    from tests.adapters.conftest import SmtpServer


def test_a_batch_of_emails_goes_over_one_smtp_session(app: App, smtp_server: SmtpServer) -> None:
    adapter = SmtpAdapter(
        host=smtp_server.host, port=smtp_server.port, from_address="p@example.com", security="none"
    )
    deliverer = build_deliverer(app, adapters={"email": adapter, "sms": CaptureAdapter()})
    ids = []
    for i in range(4):
        add_recipient(app, f"batch-{i}")
        ids.append(notify(app, f"batch-{i}", "reminder", "email", now=app.clock()).delivery["id"])

    report = deliverer.deliver_batch(ids)

    assert report.sent == 4
    with app.sessions() as session:
        message_ids = [get_delivery(session, i)["provider_message_id"] for i in ids]
    peers = {mail.peer for m in message_ids for mail in smtp_server.recorder.by_message_id(m)}
    assert len(peers) == 1
    with smtp_server.recorder.lock:
        commands = [command for command, peer in smtp_server.recorder.commands if peer in peers]
    assert commands == ["RSET", "RSET", "RSET", "QUIT"]
