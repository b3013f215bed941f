"""A real ``planner worker`` process with runaway operator templates, on SQLite and PostgreSQL: each
delivery fails fast as a template error (dead, its error recorded, never left ``sending``), and
SIGTERM still stops the worker (plain Jinja rendered ten billion iterations, past RQ's job timeout,
and a warm shutdown waited for it)."""

from __future__ import annotations

import signal
from pathlib import Path

from planner.app import App
from tests.faults.harness import (
    Child,
    add_deliveries,
    assert_nothing_sending,
    enqueue,
    process_env,
    rows,
    start,
    wait_for,
)

#: A wait long enough for a healthy worker on a loaded machine; plain Jinja needs hours.
PATIENCE = 60.0
TEMPLATES = {
    # The template: the sandbox refuses the range outright.
    "runaway": "{% for i in range(10**10) %}{{ i }}{% endfor %}",
    # Within the sandbox's ranges, but ten billion iterations: the step bound stops it.
    "nested": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
}


def test_runaway_templates_fail_fast_and_sigterm_stops_the_worker(
    any_app: App, tmp_path: Path, children: list[Child]
) -> None:
    templates = tmp_path / "templates"
    for kind, body in TEMPLATES.items():
        (templates / kind).mkdir(parents=True)
        (templates / kind / "email_subject.txt").write_text(kind)
        (templates / kind / "email.txt").write_text(body)
    runaway = add_deliveries(any_app, [("email", "a@example.com")], kind="runaway")
    nested = add_deliveries(any_app, [("email", f"n{i}@example.com") for i in range(40)], kind="nested")
    enqueue(any_app, runaway + nested)
    env = process_env(any_app, PLANNER_TEMPLATES_DIR=str(templates))
    worker = start(env, tmp_path / "worker.log", "worker")
    children.append(worker)
    wait_for(lambda: rows(any_app)[runaway[0]].status == "dead", "the runaway template to fail", PATIENCE)
    wait_for(lambda: rows(any_app)[nested[0]].status == "dead", "a nested-loop template to fail", PATIENCE)
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(PATIENCE) == 0, worker.output()
    assert_nothing_sending(any_app)
    deliveries = rows(any_app)
    assert "Range too big" in (deliveries[runaway[0]].last_error or "")
    dead = [d for i, d in deliveries.items() if i in nested and d.status == "dead"]
    assert dead and all("steps (loop iterations and calls)" in (d.last_error or "") for d in dead)
    # What the stopping worker did not reach waits for the next one, its attempt refunded.
    assert {d.status for i, d in deliveries.items() if i in nested} <= {"dead", "queued", "retrying"}
