"""One-click unsubscribe end to end: the headers on mail a real aiosmtpd server received, the link
served over real HTTP on loopback, and the opt-out honoured by the next planner decision."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from adapters.capture import CaptureAdapter
from adapters.smtp import SmtpAdapter
from planner.app import App, build_deliverer
from planner.commands.notify import notify
from planner.core.unsubscribe import UnsubscribeTarget, sign
from planner.store.queries import get_delivery
from tests.adapters.test_smtp_wire_headers import raw_field, unfolded
from tests.api import test_api
from tests.commands.test_ops import add_recipient

if TYPE_CHECKING:
    from tests.adapters.conftest import ReceivedMail, SmtpServer

server = test_api.server  # the module's loopback uvicorn
SECRET = "a-signing-secret-for-the-tests"


@pytest.fixture
def linked(app: App) -> Iterator[App]:
    app.settings.public_base_url = "https://planner.example.com"
    app.settings.signing_secret = SecretStr(SECRET)
    app.settings.unsubscribe_mailto = "unsubscribe@example.com"
    app.settings.critical_kinds = ["password_reset"]
    add_recipient(app)
    yield app


def send(app: App, smtp_server: SmtpServer, kind: str) -> tuple[str, ReceivedMail]:
    adapter = SmtpAdapter(
        host=smtp_server.host, port=smtp_server.port, from_address="p@example.com", security="none"
    )
    working = build_deliverer(app, adapters={"email": adapter, "sms": CaptureAdapter()})
    result = notify(app, "u-1", kind, "email", now=app.clock(), data={"code": "123456"})
    delivery_id = result.delivery["id"]
    working.deliver_batch([delivery_id])
    with app.sessions() as session:
        shown = get_delivery(session, delivery_id)
    assert shown["status"] == "sent", shown
    [mail] = smtp_server.recorder.by_message_id(shown["provider_message_id"])
    return str(mail.message["List-Unsubscribe"] or ""), mail


def test_non_critical_email_carries_one_click_unsubscribe(linked: App, smtp_server: SmtpServer) -> None:
    header, received = send(linked, smtp_server, "reminder")
    mail = received.message
    # On the wire as the planner wrote it (no encoded-words), folded only after the comma.
    lines = raw_field(received.raw, "List-Unsubscribe")
    assert unfolded(lines, "List-Unsubscribe") == header.encode()
    assert all(b"=?" not in line for line in lines) and all(line.endswith(b">,") for line in lines[:-1])
    match = re.fullmatch(
        r"<https://planner\.example\.com/u/([A-Za-z0-9_.-]+)>, "
        r"<mailto:unsubscribe@example\.com\?subject=unsubscribe%20([A-Za-z0-9_.-]+)>",
        header,
    )
    assert match is not None, header
    assert match.group(1) == match.group(2)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert match.group(1) == sign(SECRET.encode(), UnsubscribeTarget(1, "reminder", "email"))


def test_the_built_in_templates_print_the_link_in_their_footers(
    linked: App, smtp_server: SmtpServer
) -> None:
    header, received = send(linked, smtp_server, "daily_brief")
    link = header.split(">", 1)[0].removeprefix("<")
    text = received.message.get_body(("plain",))
    html = received.message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().splitlines()[-2:] == ["", f"Unsubscribe from these emails: {link}"]
    assert f'<a href="{link}">{link}</a>' in html.get_content()
    _, critical = send(linked, smtp_server, "password_reset")
    plain = critical.message.get_body(("plain",))
    assert plain is not None and "nsubscribe" not in plain.get_content(), "no link, no footer"


def test_critical_email_has_no_unsubscribe(linked: App, smtp_server: SmtpServer) -> None:
    header, received = send(linked, smtp_server, "password_reset")
    assert header == "" and received.message["List-Unsubscribe-Post"] is None


def test_the_link_confirms_on_get_and_unsubscribes_on_post(
    linked: App, server: tuple[test_api.Switch, str]
) -> None:
    token = sign(SECRET.encode(), UnsubscribeTarget(1, "reminder", "email"))
    with test_api.serve(server, linked) as http:
        page = http.get(f"/u/{token}")
        assert page.status_code == 200 and 'method="post"' in page.text and "reminder" in page.text
        assert notify(linked, "u-1", "reminder", "email", now=linked.clock()).delivery["status"] == "queued"

        forged = sign(b"another key", UnsubscribeTarget(1, "reminder", "email"))
        assert http.post(f"/u/{forged}").status_code == 404
        assert http.post(f"/u/{token[:-2]}xx").status_code == 404

        done = http.post(f"/u/{token}", content="List-Unsubscribe=One-Click")
        assert done.status_code == 200, done.text
        assert http.post(f"/u/{token}").status_code == 200  # a repeat changes nothing and still succeeds

    after = notify(linked, "u-1", "reminder", "email", now=linked.clock())
    assert (after.delivery["status"], after.delivery["reason"]) == ("suppressed", "opted_out")
    with linked.sessions() as session:
        timeline = get_delivery(session, after.delivery["id"])["timeline"]
    assert timeline[0]["detail"]["scope"] == "kind:reminder"
    # Other kinds still go out.
    assert notify(linked, "u-1", "daily_brief", "email", now=linked.clock()).delivery["status"] == "queued"
