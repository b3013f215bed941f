"""An SMTP server that refuses the adapter's credentials: the channel pauses itself, no attempt burns.

A real aiosmtpd server refuses AUTH; a real worker process sends. The worker must put every
delivery back unharmed, pause ``email`` with reason ``adapter_config`` and the error (password
redacted), and ``planner status``, ``/readyz`` and ``/metrics`` must say so. After the operator fixes
the settings, ``planner resume email`` sends everything, once. ``status`` and ``resume`` run in
this process, on the same environment as the workers: only the workers need a process of their own.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.readmodels.metrics import render_metrics
from planner.store.pauses import ADAPTER_CONFIG
from tests.faults.harness import add_deliveries, enqueue, process_env, rows, serving_api, start
from tests.faults.servers import SMTP_PASSWORD, SMTP_USER, FaultSmtp, running_smtp

WRONG_PASSWORD = "wrong-password-xyzzy"


@dataclass
class Authenticator:
    """Accepts ``SMTP_USER``/``SMTP_PASSWORD`` only; counts every AUTH attempt."""

    attempts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        with self.lock:
            self.attempts.append(data.password.decode())
        ok = data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[FaultSmtp, Authenticator, int]]:
    handler, auth = FaultSmtp(), Authenticator()
    # AUTH offered without TLS (loopback only); the adapter logs in because it has a username.
    with running_smtp(handler, auth_require_tls=False, authenticator=auth) as port:
        yield handler, auth, port


def _status(env: dict[str, str]) -> dict[str, Any]:
    """``planner status --json`` (the JSON comes first; logs may follow)."""
    output = _in_process(env, "status", "--json")
    data, _ = json.JSONDecoder().raw_decode(output[output.index("{") :])
    assert isinstance(data, dict)
    return data


def _in_process(env: dict[str, str], *args: str) -> str:
    """``planner ARGS`` in this process with the ``PLANNER_*`` variables of ``env`` and no others."""
    planner_env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PLANNER_")}
    planner_env.update({k: v for k, v in env.items() if k.startswith("PLANNER_")})
    saved = structlog.get_config()  # the CLI configures structlog for itself
    try:
        result = CliRunner().invoke(cli_app, list(args), env=planner_env)
    finally:
        structlog.configure(**saved)
    assert result.exit_code == 0, result.output
    return result.output


def _cli(env: dict[str, str], tmp_path: Path, *args: str) -> str:
    child = start(env, tmp_path / f"{args[0]}.log", *args)
    try:
        assert child.wait() == 0, child.output()
    finally:
        child.stop()
    return child.output()


def test_refused_credentials_pause_the_channel_and_burn_no_attempt(
    pg_app: App, smtp: tuple[FaultSmtp, Authenticator, int], tmp_path: Path
) -> None:
    handler, auth, port = smtp
    ids = add_deliveries(pg_app, [("email", f"u{i}@example.com") for i in range(5)])
    enqueue(pg_app, ids)
    env = process_env(pg_app, smtp_port=port, PLANNER_SMTP_USERNAME=SMTP_USER)
    wrong = env | {"PLANNER_SMTP_PASSWORD": WRONG_PASSWORD}
    _cli(wrong, tmp_path, "worker", "--burst")

    # One connection (smtplib tries each offered AUTH mechanism on it), then nothing more.
    assert handler.sessions == 1 and set(auth.attempts) == {WRONG_PASSWORD}
    assert not handler.received
    waiting = rows(pg_app).values()
    assert {(d.status, d.reason, d.attempts) for d in waiting} == {("queued", "paused", 0)}

    status = _status(env)
    [pause] = status["paused"]
    assert (pause["scope"], pause["value"], pause["reason"]) == ("channel", "email", ADAPTER_CONFIG)
    assert "535" in pause["detail"] and "credentials" in pause["detail"]
    assert WRONG_PASSWORD not in json.dumps(status)

    pg_app.settings.api_token = SecretStr("t0ken-for-the-test")
    with serving_api(pg_app) as http:
        # The check's name is public; its detail is for whoever holds the token.
        anonymous = http.get("/readyz")
        assert anonymous.status_code == 503 and "adapters" in anonymous.json()["failing"]
        assert "detail" not in anonymous.json()["checks"]["adapters"]
        ready = http.get("/readyz", headers={"Authorization": "Bearer t0ken-for-the-test"})
        assert ready.status_code == 503
        assert "email paused (adapter_config)" in ready.json()["checks"]["adapters"]["detail"]
    metrics = render_metrics(pg_app, pg_app.clock()).decode()
    assert 'planner_paused{reason="adapter_config",scope="channel",value="email"} 1.0' in metrics

    # The operator fixes PLANNER_SMTP_PASSWORD, then resumes the channel.
    right = env | {"PLANNER_SMTP_PASSWORD": SMTP_PASSWORD}
    _in_process(right, "resume", "email")
    _cli(right, tmp_path, "worker", "--burst")
    assert {(d.status, d.attempts) for d in rows(pg_app).values()} == {("sent", 1)}
    assert sorted(handler.count().values()) == [1] * 5
    assert _status(env)["paused"] == []
