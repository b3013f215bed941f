"""The operator's views in Chromium: workers (a real RQ worker process), queues, the send history and
the header's search; every figure checked against RQ's own API or the database."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rq import Queue, Worker
from rq.command import send_shutdown_command
from rq.job import Job
from sqlalchemy import text

from planner.app import App
from planner.core.wording import duration
from planner.settings import QUEUES
from tests.ui.conftest import NOW, follow

ROOT = Path(__file__).resolve().parents[2]
WORKER = "ui-test-worker"
RELEASE = "ui-test:release"
SCRIPT = (
    "import sys, redis, rq; c = redis.Redis.from_url(sys.argv[1]); "
    "rq.SimpleWorker([rq.Queue('bulk', connection=c)], connection=c, name=sys.argv[2])"
    ".work(logging_level='WARNING')"
)


def _until(check: Any, what: str, timeout: float = 15.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _worker(app: App) -> Worker | None:
    return Worker.find_by_key(Worker.redis_worker_namespace_prefix + WORKER, connection=app.redis)


def _registered(app: App) -> bool:
    """Whether the worker is born and in RQ's registry, read without RQ's lookup: asked before the
    birth, ``find_by_key`` removes the key from the registry, and could do it just after the birth
    put it there (the page then lists no such worker)."""
    key = Worker.redis_worker_namespace_prefix + WORKER
    return bool(app.redis.sismember(Worker.redis_workers_keys, key) and app.redis.exists(key))


@pytest.fixture
def rq_worker(ui_app: App) -> Iterator[Queue]:
    """A real RQ worker process on the bulk queue, stopped the way RQ stops one."""
    url = ui_app.settings.redis_url or ""
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, url, WORKER], cwd=ROOT)
    queue = Queue("bulk", connection=ui_app.redis)
    try:
        _until(lambda: _registered(ui_app), "the worker to register")
        yield queue
    finally:
        ui_app.redis.rpush(RELEASE, "go")
        send_shutdown_command(ui_app.redis, WORKER)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        ui_app.redis.delete(RELEASE)


def test_workers_page_shows_the_current_job_counts_and_heartbeat(
    page: Any, ui_app: App, rq_worker: Queue
) -> None:
    failing = rq_worker.enqueue("tests.ui.jobs.fail", description="a failing job")
    _until(lambda: Job.fetch(failing.id, connection=ui_app.redis).is_failed, "the failing job to fail")
    url = ui_app.settings.redis_url
    held = rq_worker.enqueue("tests.ui.jobs.hold", url, RELEASE, description="deliver 7 email")
    _until(lambda: (w := _worker(ui_app)) and w.get_current_job_id() == held.id, "the job to start")

    page.goto("/ui/workers")
    row = page.locator(f"#workers tr[data-worker='{WORKER}']")
    assert row.locator("td").nth(1).inner_text() == "busy"
    current = row.locator(".current-job").inner_text()
    assert current.startswith("deliver 7 email") and f"job {held.id}" in current and "bulk" in current
    assert (row.locator(".processed").inner_text(), row.locator(".failed").inner_text()) == ("0", "1")
    assert row.locator(".heartbeat").inner_text().split(" ago")[0].endswith(" s")
    assert "rq" not in page.locator("#workers").inner_text().lower().split(WORKER)[0]  # no stray repr

    ui_app.redis.rpush(RELEASE, "go")
    # Finished and its current job cleared: RQ writes the two in separate steps.
    _until(
        lambda: (w := _worker(ui_app)) and w.successful_job_count == 1 and w.get_current_job_id() is None,
        "the job to finish",
    )
    page.reload()
    row = page.locator(f"#workers tr[data-worker='{WORKER}']")
    assert row.locator(".current-job").inner_text() == "idle"
    assert row.locator(".processed").inner_text() == "1"
    # The worker the module registered (alive, idle) is listed too.
    assert page.locator("#workers tbody tr").count() >= 2


def test_a_worker_that_died_without_a_goodbye_is_shown_gone(page: Any, ui_app: App) -> None:
    from planner.processes.worker import make_worker

    ghost = make_worker(ui_app)
    ghost.register_birth()
    ui_app.redis.delete(ghost.key)  # as when its heartbeat key expires after a kill -9
    try:
        page.goto("/ui/workers")
        row = page.locator(f"#workers tr[data-worker='{ghost.name}']")
        assert "gone" in row.inner_text() and "heartbeat key expired" in row.inner_text()
        assert ui_app.redis.sismember("rq:workers", ghost.key)  # the page changed nothing
    finally:
        ui_app.redis.srem("rq:workers", ghost.key)


def test_queues_page_matches_rq_and_the_database(page: Any, ui_app: App) -> None:
    page.goto("/ui/queues")
    rows = page.locator("#queues tbody tr")
    assert [r.get_attribute("data-queue") for r in rows.all()] == list(QUEUES)
    with ui_app.sessions() as session:
        due = dict(
            session.execute(
                text(
                    "SELECT queue, count(*) FROM delivery WHERE status IN ('planned', 'queued', 'retrying')"
                    " AND scheduled_at < :now GROUP BY queue"
                ),
                {"now": NOW},
            ).all()
        )
    for name in QUEUES:
        queue = Queue(name, connection=ui_app.redis)
        row = page.locator(f"#queues tr[data-queue='{name}']")
        assert int(row.locator(".waiting").inner_text()) == queue.count, name
        assert int(row.locator(".scheduled").inner_text()) == queue.scheduled_job_registry.get_job_count(
            cleanup=False
        ), name
        assert int(row.locator(".due").inner_text()) == due.get(name, 0), name
        if queue.count:
            first = Job.fetch(queue.get_job_ids(0, 1)[0], connection=ui_app.redis)
            assert f"since {first.enqueued_at:%Y-%m-%d %H:%M:%S}Z" in row.locator(".oldest").inner_text()
    assert page.locator("#queues").inner_text().count("none waiting") == sum(
        1 for name in QUEUES if not Queue(name, connection=ui_app.redis).count
    )


def test_history_charts_count_what_was_sent(page: Any, ui_app: App) -> None:
    for hours, start in ((1, NOW - timedelta(minutes=59)), (24, NOW - timedelta(hours=23, minutes=45))):
        with ui_app.sessions() as session:
            sent = session.scalar(
                text("SELECT count(*) FROM delivery WHERE status = 'sent' AND sent_at >= :since"),
                {"since": start},
            )
            longest = session.scalar(
                text(
                    "SELECT max(sent_at - scheduled_at) FROM delivery WHERE status = 'sent'"
                    " AND sent_at >= :since"
                ),
                {"since": start},
            )
        assert sent
        page.goto(f"/ui/history?hours={hours}")
        summary = page.locator("#history-summary").inner_text()
        assert summary.startswith(f"{sent} sent in the last"), summary
        drawn = [
            int(t.split(": ")[1].split()[0])
            for t in page.locator("#throughput-chart rect title").all_text_contents()
        ]
        assert sum(drawn) == sent
        assert page.locator("#latency-chart rect title", has_text="longest").count() >= 1
        assert summary.endswith(f"; the longest from due to sent {duration(longest)}."), summary
    follow(page, "#windows a:text('last 6 hours')")
    assert page.url.endswith("/ui/history?hours=6")
    response = page.goto("/ui/history?hours=5")
    assert response.status == 400 and "hours" in page.locator("#error-message").inner_text()


def test_the_header_search_opens_what_it_finds(page: Any, ui_app: App) -> None:
    page.goto("/ui")
    page.fill("header input[name=q]", "RITA@example.com")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/ui/recipients/rita")
    with ui_app.sessions() as session:
        delivery_id = session.scalar(text("SELECT min(id) FROM delivery"))
    page.fill("header input[name=q]", str(delivery_id))
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(f"**/ui/deliveries/{delivery_id}")
    page.fill("header input[name=q]", "u-1")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/ui/recipients?q=u-1")
    assert page.locator("#recipients tbody tr").count() > 1
