"""The integrator examples of the docs (docs/how-to/http-api.md), run as written with bash and curl
against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from planner.app import App
from planner.store.tables import AUDIT, RECIPIENTS
from tests.api import test_api

server = test_api.server  # the module's loopback uvicorn
PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "http-api.md"


def integrator_examples() -> str:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- integrator-examples -->\n```sh\n(.*?)```\n<!-- /integrator-examples -->", text, re.S
    )
    assert match is not None, f"the integrator examples are missing from {PAGE}"
    return match.group(1)


# The examples' HTTP paths are tested on both backends in test_api_v1.py; here the text itself is
# under test, once.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_integrator_examples_of_the_docs_run_as_written(
    server: tuple[test_api.Switch, str], app: App
) -> None:
    script = integrator_examples()
    assert script.count("curl ") >= 11
    app.settings.api_token = None
    app.settings.public_base_url = "https://planner.example.com"
    app.settings.twilio_auth_token = SecretStr("readme-twilio-token")
    app.settings.mailgun_signing_key = SecretStr("readme-mailgun-key")
    with test_api.serve(server, app):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
        env.update(
            PLANNER_URL=server[1],
            PLANNER_DATABASE_URL=app.settings.database_url,
            PLANNER_REDIS_URL=app.settings.redis_url or "",
            PLANNER_LOG_LEVEL="WARNING",
            PLANNER_PUBLIC_BASE_URL="https://planner.example.com",
            PLANNER_TWILIO_AUTH_TOKEN="readme-twilio-token",
            PLANNER_MAILGUN_SIGNING_KEY="readme-mailgun-key",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert '"next_sends":[{' in done.stdout.replace(" ", "")
    assert '{"recipients":[{"id":"ann","timezone":"Europe/Paris"' in done.stdout.replace(" ", "")
    # ann's STOP opted her out of SMS; the preference put her back in (changed both times).
    assert done.stdout.replace(" ", "").count('"changed":true') == 2, done.stdout
    # The two unknown message ids: acknowledged, nothing recorded.
    assert done.stdout.replace(" ", "").count('"recorded":false') == 2, done.stdout
    with app.sessions() as session:
        actions = [
            (actor, a)
            for actor, a in session.execute(select(AUDIT.c.actor, AUDIT.c.action).order_by(AUDIT.c.id))
            if a != "token_created"
        ]
        erased = session.scalar(select(RECIPIENTS.c.external_id))
    assert actions == [
        ("crm", "recipient_created"),
        ("crm", "subscription_put"),
        ("crm", "subscription_patched"),
        ("crm", "subscription_put"),
        ("crm", "event_recorded"),
        ("crm", "recipient_patched"),
        ("twilio-inbound", "sms_opted_out"),
        ("crm", "preference_set"),
        ("crm", "preference_set"),
        ("crm", "subscription_deleted"),
        ("crm", "recipient_erased"),
    ]
    assert erased is not None and erased.startswith("#erased-")
