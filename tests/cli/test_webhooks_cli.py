"""``planner webhooks``: the secret alone on stdout once, JSON for machines, one-line errors that name
the option and write nothing; redelivery and attempts against a real receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from planner.app import App, build_webhook_sender
from planner.cli import app as cli_app
from planner.store.tables import WEBHOOK_ENDPOINTS
from tests.webhook_receiver import Receiver
from tests.webhook_support import send_notifications


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.down()


@pytest.fixture
def private(monkeypatch: pytest.MonkeyPatch, app: App) -> None:
    monkeypatch.setenv("PLANNER_WEBHOOKS_ALLOW_PRIVATE", "1")
    app.settings.webhooks_allow_private = True


def run(cli: CliRunner, *args: str) -> tuple[int, str, str]:
    result = cli.invoke(cli_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def endpoints(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WEBHOOK_ENDPOINTS)) or 0)


def test_add_prints_the_secret_alone_once(cli: CliRunner, private: None, receiver: Receiver) -> None:
    code, stdout, stderr = run(cli, "webhooks", "add", receiver.url, "--event", "delivery.sent,delivery.dead")
    assert code == 0, stderr
    assert stdout.strip().startswith("whsec_") and len(stdout.strip().splitlines()) == 1
    assert "shown only now" in stderr
    code, stdout, _ = run(cli, "webhooks", "list", "--json")
    [listed] = json.loads(stdout)
    assert listed["event_types"] == ["delivery.sent", "delivery.dead"] and "secret" not in listed
    code, stdout, _ = run(cli, "webhooks", "show", str(listed["id"]))
    assert code == 0 and receiver.url in stdout and "whsec_" not in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["http://127.0.0.1:9/hooks", "--event", "delivery.sent"],
            "error: URL: 'http://127.0.0.1:9/hooks' is invalid",
        ),
        (["https://127.0.0.1/hooks", "--event", "delivery.sent"], "expected a public address"),
        (["https://nowhere.invalid/x", "--event", "delivery.sent"], "a URL whose host resolves"),
        (["https://u:p@example.com/x", "--event", "delivery.sent"], "no credentials"),
        (
            ["https://8.8.8.8/x", "--event", "delivery.sending"],
            "error: --event: 'delivery.sending' is invalid",
        ),
        (["https://8.8.8.8/x"], "error: --event: [] is invalid"),
    ],
)
def test_bad_input_is_one_line_naming_the_option_and_writes_nothing(
    cli: CliRunner, app: App, args: list[str], message: str
) -> None:
    code, stdout, stderr = run(cli, "webhooks", "add", *args)
    assert code == 2 and stdout == ""
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    assert endpoints(app) == 0


def test_unknown_ids_are_one_line_errors(cli: CliRunner) -> None:
    for args in (["show", "7"], ["remove", "7"], ["rotate-secret", "7"], ["redeliver", "7"], ["show", "x"]):
        code, _, stderr = run(cli, "webhooks", *args)
        assert code == 2 and len(stderr.strip().splitlines()) == 1, (args, stderr)
        assert "not found" in stderr or "is invalid" in stderr


def test_update_rotate_redeliver_attempts_remove(
    cli: CliRunner, app: App, private: None, receiver: Receiver
) -> None:
    _, secret, _ = run(cli, "webhooks", "add", receiver.url, "--event", "delivery.sent")
    receiver.secrets.append(secret.strip())
    send_notifications(app)
    sender = build_webhook_sender(app)
    try:
        sender.drain()
        code, stdout, stderr = run(cli, "webhooks", "show", "1", "--json")
        [event] = json.loads(stdout)["latest"]
        assert event["status"] == "delivered"
        code, stdout, stderr = run(cli, "webhooks", "rotate-secret", "1", "--overlap", "1h", "--json")
        assert code == 0, stderr
        receiver.secrets = [json.loads(stdout)["secret"]]
        code, _, stderr = run(cli, "webhooks", "redeliver", str(event["id"]))
        assert code == 0 and "sent again now" in stderr
        sender.drain()
    finally:
        sender.close()
    assert [r.webhook_id for r in receiver.received] == [event["msg_id"]] * 2 and receiver.rejected == []
    code, stdout, _ = run(cli, "webhooks", "attempts", "1", "--json")
    assert [(a["attempt"], a["status_code"]) for a in json.loads(stdout)] == [(1, 204), (1, 204)]
    code, stdout, _ = run(cli, "webhooks", "attempts", "1")
    assert code == 0 and "delivery.sent" in stdout
    code, _, stderr = run(cli, "webhooks", "update", "1", "--disable")
    assert code == 0 and "disabled" in stderr
    code, _, stderr = run(cli, "webhooks", "redeliver", str(event["id"]))
    assert code == 1 and "enable it first" in stderr
    code, _, stderr = run(cli, "webhooks", "update", "1", "--event", "nope")
    assert code == 2 and "--event: 'nope' is invalid" in stderr
    code, _, stderr = run(cli, "webhooks", "remove", "1")
    assert code == 0 and endpoints(app) == 0
