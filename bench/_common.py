"""Shared helpers for the benchmark scripts: servers, child processes, tables, machine facts.

The scripts start their own Redis and PostgreSQL (``tests/servers.py``) in temporary
directories, run every measured step in a fresh child process (so its peak RSS is its own),
and stop everything they started, also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# BENCH_TREE: another checkout whose planner a child runs (plan_bench --baseline); it must win over
# this checkout, which is otherwise put first on the path.
REPO = Path(os.environ.get("BENCH_TREE") or Path(__file__).resolve().parent.parent)
BENCH = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


class BenchError(RuntimeError):
    """A benchmark step failed (child exited non-zero, timed out, or a check did not hold)."""


@contextlib.contextmanager
def servers(workdir: Path, *, postgres: bool) -> Iterator[tuple[Any, Any]]:
    """A throwaway Redis (always) and PostgreSQL (when asked); both stopped on the way out."""
    from tests.servers import start_postgres, start_redis

    redis_server = start_redis(workdir / "redis")
    pg_server = None
    try:
        if postgres:
            pg_server = start_postgres(workdir / "pg")
            if pg_server is None:
                raise BenchError("PostgreSQL is not installed (no initdb/postgres found)")
        yield redis_server, pg_server
    finally:
        if pg_server is not None:
            pg_server.stop()
        redis_server.stop()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(BENCH)])
    env.setdefault("PYTHONHASHSEED", "0")
    if extra:
        env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: always reaps the child (and its process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_child(args: Sequence[str], *, env: Mapping[str, str], timeout: float, log: Path) -> dict[str, Any]:
    """Run ``python <args>`` in a fresh process; its last stdout line is a JSON object."""
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=err,
            env=dict(env),
            cwd=REPO,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            raise BenchError(f"{' '.join(args[:2])} timed out after {timeout:.0f} s (log: {log})") from None
        except BaseException:
            stop_process(proc)
            raise
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise BenchError(f"child {' '.join(args[:2])} exited with {proc.returncode}:\n{tail}")
    lines = [line for line in out.decode().splitlines() if line.strip()]
    if not lines:
        raise BenchError(f"child {' '.join(args[:2])} printed nothing (log: {log})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def maxrss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by ``pid``, its live descendants and its reaped children.

    Used for the servers (the postmaster reaps its backends, so their time lands in its cutime).
    Linux only; None elsewhere or when the process is gone.
    """
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), fields)  # (ppid, fields from state onwards)
    if pid not in stats:
        return None
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        fields = stats[current][1]
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if current == pid:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
        stack.extend(children.get(current, []))
    return total / tick


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM (reset by exec, unlike ru_maxrss, which a child
    inherits from its parent on Linux), falling back to ru_maxrss."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return maxrss_mb()


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def machine_info(redis_url: str | None = None, pg_dsn: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {d: _version(d) for d in ("sqlalchemy", "psycopg", "rq", "redis", "limits")},
        "loadavg": [round(x, 2) for x in os.getloadavg()],  # 1, 5 and 15 minutes, as called
    }
    with contextlib.suppress(OSError, ValueError):
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        info["memory_gib"] = round(mem_kb / 1024 / 1024, 1)
    if redis_url:
        import redis

        conn = redis.Redis.from_url(redis_url)
        info["versions"]["redis-server"] = conn.info("server")["redis_version"]
        conn.close()
    if pg_dsn:
        import psycopg

        with psycopg.connect(pg_dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["versions"]["postgresql"] = row[0] if row else "-"
    import sqlite3

    info["versions"]["sqlite"] = sqlite3.sqlite_version
    return info


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[str(cell) for cell in row])
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a pipe or a file: do not squeeze the table into 80 columns
    console.print(table)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


class Deadline:
    """An overall time bound for a script: each step gets what is left, never more."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise BenchError("the benchmark's overall time limit (--timeout) was reached")
        return min(remaining, cap) if cap is not None else remaining
