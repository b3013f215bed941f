"""The documentation's screenshots of the dashboard and the unsubscribe page, taken with Debian's
chromium (``/usr/bin/chromium``, driven by Playwright; never ``playwright install``).

    .venv/bin/python docs/screenshots.py                 # into docs/images/
    .venv/bin/python docs/screenshots.py --out /tmp/shots

Starts its own Redis and PostgreSQL in a temporary directory, fills them with the browser tests'
data set (``tests/ui/conftest.py``: the sample recipients, one planner run, sends, dead letters, a
recipient with a rule of three times, a snooze and a per-kind opt-out) plus an hour of sends for the
history, serves the API and the dashboard on loopback with the service's clock at the tests' fixed
instant, runs a real RQ worker on a held job (so the workers page has one busy), and saves one
full-page PNG per view. Everything it started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq import Queue, Worker  # noqa: E402

from planner.app import App, build_deliverer  # noqa: E402
from planner.commands.notify import notify  # noqa: E402
from planner.core.unsubscribe import UnsubscribeTarget, sign  # noqa: E402
from planner.processes.worker import make_worker  # noqa: E402
from planner.store.db import create_db_engine, upgrade  # noqa: E402
from planner.store.recipients import recipient_id_of  # noqa: E402
from tests.servers import start_postgres, start_redis  # noqa: E402
from tests.ui.conftest import (  # noqa: E402
    CHROMIUM,
    FLAGS,
    NOW,
    SIGNING_SECRET,
    TOKEN,
    populate,
    serving,
    sign_in,
    ui_settings,
)

HELD = "screenshots:release"
WORKER = "worker-2.example.internal"
#: (file, path, width): every view the documentation shows.
VIEWS = [
    ("dashboard-overview.png", "/ui", 1280),
    ("dashboard-recipient.png", "/ui/recipients/ny-early?date=2026-03-08", 1280),
    ("dashboard-recipient-schedules.png", "/ui/recipients/rita", 1280),
    ("dashboard-recipients.png", "/ui/recipients?q=u-1", 1280),
    ("dashboard-delivery.png", "/ui/deliveries/{planned}", 1280),
    ("dashboard-workers.png", "/ui/workers", 1280),
    ("dashboard-queues.png", "/ui/queues", 1280),
    ("dashboard-history.png", "/ui/history", 1280),
    ("unsubscribe.png", "{unsubscribe}", 800),
    ("unsubscribe-done.png", "{unsubscribed}", 800),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="Where the PNGs go.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="planner-shots-") as work, service(Path(work)) as app:
        an_hour_of_sends(app)
        with serving(app) as url, busy_worker(app):
            places = {"planned": first_planned(app), **unsubscribe_links(app)}
            for name in shoot(url, places, args.out):
                sys.stdout.write(f"{args.out / name}\n")


@contextmanager
def service(work: Path) -> Iterator[App]:
    """The tests' data set on a fresh PostgreSQL and Redis, the service's clock fixed at NOW."""
    redis_server = start_redis(work / "redis")
    pg_server = start_postgres(work / "pg")
    if pg_server is None:
        redis_server.stop()
        raise SystemExit("PostgreSQL is not installed (initdb and postgres not found)")
    try:
        pg_server.create_database("shots")
        engine = create_db_engine(pg_server.url("shots"))
        upgrade(engine)
        engine.dispose()
        app = App(ui_settings(pg_server.url("shots"), redis_server.url, work / "outbox"), clock=lambda: NOW)
        populate(app)
        idle = make_worker(app)
        idle.register_birth()
        try:
            yield app
        finally:
            idle.register_death()
            app.close()
    finally:
        pg_server.stop()
        redis_server.stop()


def an_hour_of_sends(app: App) -> None:
    """Ad-hoc sends due over the last hour, each sent a few seconds to a minute late, as a worker's
    clock says: the history's bars."""
    from sqlalchemy import text

    with app.sessions() as session:
        people = list(
            session.scalars(
                text(
                    "SELECT external_id FROM recipient WHERE email IS NOT NULL AND NOT email_opt_out"
                    " AND email_invalid IS NULL AND external_id LIKE 'u-%' ORDER BY id LIMIT 400"
                )
            )
        )
    sent_by: dict[Any, list[int]] = {}
    for minute in range(1, 60):
        due = NOW - timedelta(minutes=60 - minute)
        for n in range(1 + (minute * 7) % 5):
            # Spread over recipients: each has a cap of 10 emails a day.
            result = notify(app, people[(minute * 5 + n) % len(people)], "daily_brief", "email", now=due)
            late = timedelta(seconds=3 + (minute * 13 + n * 17) % 55)
            sent_by.setdefault(due + late, []).append(int(result.delivery["id"]))
    for at, ids in sorted(sent_by.items()):
        worker = App(app.settings, clock=lambda at=at: at)
        build_deliverer(worker).deliver_batch(ids)
        worker.close()


@contextmanager
def busy_worker(app: App) -> Iterator[None]:
    """A real RQ worker process holding one job until the screenshots are taken."""
    url = app.settings.redis_url or ""
    script = (
        "import sys, redis, rq; c = redis.Redis.from_url(sys.argv[1]); "
        "rq.SimpleWorker([rq.Queue('bulk', connection=c)], connection=c, name=sys.argv[2])"
        ".work(logging_level='WARNING')"
    )
    process = subprocess.Popen([sys.executable, "-c", script, url, WORKER], cwd=ROOT)
    try:
        # On the bulk queue, which the data set leaves empty: it takes none of the planner's jobs
        # (a plain RQ worker cannot send them).
        Queue("bulk", connection=app.redis).enqueue(
            "tests.ui.jobs.hold", url, HELD, 300, description="deliver 100 email"
        )
        key = Worker.redis_worker_namespace_prefix + WORKER
        for _ in range(300):
            worker = Worker.find_by_key(key, connection=app.redis)
            if worker is not None and worker.get_current_job_id():
                break
            time.sleep(0.05)
        time.sleep(1.5)  # a heartbeat a second or so old, and a job running for as long
        yield
    finally:
        app.redis.rpush(HELD, "go")
        from rq.command import send_shutdown_command

        send_shutdown_command(app.redis, WORKER)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def first_planned(app: App) -> int:
    """A delivery whose timeline has the planner's reasons (an engagement tier, a deferral)."""
    from sqlalchemy import text

    with app.sessions() as session:
        found = session.scalar(
            text("SELECT min(id) FROM delivery WHERE status = 'sent' AND subscription_id IS NOT NULL")
        )
    return int(found)


def unsubscribe_links(app: App) -> dict[str, str]:
    with app.sessions() as session:
        rita = recipient_id_of(session, "rita")
    assert rita is not None
    secret = SIGNING_SECRET.encode()
    return {
        "unsubscribe": "/u/" + sign(secret, UnsubscribeTarget(rita, "reminder", "sms")),
        "unsubscribed": "/u/" + sign(secret, UnsubscribeTarget(rita, "weekly_digest", "email")),
    }


def shoot(url: str, places: dict[str, Any], out: Path) -> Iterator[str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for name, path, width in VIEWS:
                context = browser.new_context(base_url=url, viewport={"width": width, "height": 800})
                page = context.new_page()
                if path.startswith("/ui"):
                    sign_in(page, TOKEN)
                page.goto(path.format(**places))
                page.wait_for_load_state("networkidle")
                (out / name).write_bytes(page.screenshot(full_page=True))
                context.close()
                yield name
        finally:
            browser.close()


if __name__ == "__main__":
    main()
