"""The README's integrator examples, run as written with bash and curl against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from planner.app import App
from planner.store.tables import AUDIT, RECIPIENTS
from tests.integration import test_api

server = test_api.server  # the module's loopback uvicorn
README = Path(__file__).resolve().parents[2] / "README.md"


def integrator_examples() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- integrator-examples -->\n```sh\n(.*?)```\n<!-- /integrator-examples -->", text, re.S
    )
    assert match is not None, "the README's integrator examples are missing"
    return match.group(1)


# The examples' HTTP paths are tested on both backends in test_api_v1.py; here the text itself is
# under test, once.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_readme_integrator_examples_run_as_written(server: tuple[test_api.Switch, str], app: App) -> None:
    script = integrator_examples()
    assert script.count("curl ") >= 8
    app.settings.api_token = None
    with test_api.serve(server, app):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
        env.update(
            PLANNER_URL=server[1],
            PLANNER_DATABASE_URL=app.settings.database_url,
            PLANNER_REDIS_URL=app.settings.redis_url or "",
            PLANNER_LOG_LEVEL="WARNING",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert '"next_sends":[{' in done.stdout.replace(" ", "")
    with app.sessions() as session:
        actions = [
            (a, t) for a, t in session.execute(select(AUDIT.c.action, AUDIT.c.target)) if a != "token_created"
        ]
        erased = session.scalar(select(RECIPIENTS.c.external_id))
        actors = set(session.scalars(select(AUDIT.c.actor).where(AUDIT.c.action != "token_created")))
    assert actors == {"crm"}
    assert [a for a, _ in actions] == [
        "recipient_created",
        "subscription_put",
        "recipient_patched",
        "preference_set",
        "preference_set",
        "subscription_deleted",
        "recipient_erased",
    ]
    assert erased is not None and erased.startswith("#erased-")
