"""Benchmark: messages/s through the SMTP adapter against a loopback aiosmtpd server with STARTTLS
and AUTH, one session per batch (RSET between messages) against a connection per message.

    .venv/bin/python bench/smtp_bench.py                 # 300 messages, batches of 100, 5 rounds
    .venv/bin/python bench/smtp_bench.py --messages 1000 --json

Both modes run in this process, alternating round by round, so a change in the machine's load
hits both alike; the figures are medians of the rounds. The server is aiosmtpd (as in tests/adapters)
in a child process of its own: in one process, client and server would hand the GIL to each other
at every SMTP reply and measure Python's switch interval instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import Message, batch_session
from adapters.smtp import SmtpAdapter
from bench._common import machine_info, print_table
from tests.adapters.conftest import TlsFiles

SERVER = """
import sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from tests.adapters.conftest import TlsFiles, _authenticate, running_smtp
tls = TlsFiles(Path(sys.argv[1]), Path(sys.argv[2]))
with running_smtp(tls_context=tls.server_context(), require_starttls=True, auth_required=True,
                  authenticator=_authenticate) as server:
    print(server.port, server.username, server.password, flush=True)
    for line in sys.stdin:
        print(len(server.recorder.received), flush=True)
"""

FROM = "Planner <noreply@planner.local>"


def make_tls(directory: Path, key: str = "ec") -> TlsFiles:
    """A throwaway certificate: P-256 (as the tests use) or RSA 2048 (slower handshakes)."""
    files = TlsFiles(cert=directory / "cert.pem", key=directory / "key.pem")
    openssl = shutil.which("openssl") or "openssl"
    algorithm = ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if key == "ec" else ["rsa:2048"]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", *algorithm,
         "-nodes", "-keyout", str(files.key), "-out", str(files.cert), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return files


def message(n: int) -> Message:
    return Message(
        delivery_id=n, dedup_key=f"dk-{n}", recipient_id=f"r-{n}", kind="daily_brief", channel="email",
        to=f"user{n}@example.com", subject="Your brief", text=f"Hello {n},\n" + "news " * 200,
        html=None, scheduled_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC), message_id=f"<d-{n}@planner.local>",
    )  # fmt: skip


def one_round(
    adapter: SmtpAdapter, count: int, batch_size: int, reuse: bool, start: int
) -> tuple[float, float]:
    """Messages per second of wall time, and the client's CPU milliseconds per message."""
    began, cpu = time.perf_counter(), time.process_time()
    for first in range(start, start + count, batch_size):
        batch = [message(n) for n in range(first, min(first + batch_size, start + count))]
        if reuse:
            with batch_session(adapter):
                for m in batch:
                    adapter.send(m)
        else:
            for m in batch:
                adapter.send(m)
    return count / (time.perf_counter() - began), (time.process_time() - cpu) * 1000 / count


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--key", choices=["ec", "rsa"], default="ec", help="the server certificate's key")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smtp-bench-") as tmp:
        tls = make_tls(Path(tmp), args.key)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(tls.cert), str(tls.key)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        assert server.stdin is not None and server.stdout is not None
        try:
            port, username, password = server.stdout.readline().split()
            adapter = SmtpAdapter(
                from_address=FROM, host="127.0.0.1", port=int(port), security="starttls",
                username=username, password=password, ssl_context=tls.client_context(),
            )  # fmt: skip
            rates: dict[str, list[tuple[float, float]]] = {
                "session per batch": [],
                "connection per message": [],
            }
            load = os.getloadavg()[0]
            n = 0
            for _ in range(args.rounds):
                for mode in rates:
                    reuse = mode == "session per batch"
                    rates[mode].append(one_round(adapter, args.messages, args.batch_size, reuse, n))
                    n += args.messages
            server.stdin.write("count\n")
            server.stdin.flush()
            received = int(server.stdout.readline())
        finally:
            server.stdin.close()
            server.wait(10)
    medians = {mode: statistics.median(rate for rate, _ in r) for mode, r in rates.items()}
    cpu_ms = {mode: statistics.median(ms for _, ms in r) for mode, r in rates.items()}
    ratio = medians["session per batch"] / medians["connection per message"]
    result: dict[str, Any] = {
        "messages_per_round": args.messages, "batch_size": args.batch_size, "rounds": args.rounds,
        "messages_per_second": medians, "client_cpu_ms_per_message": cpu_ms, "ratio": ratio,
        "received": received, "key": args.key,
        "load_before": load, "machine": machine_info(),
    }  # fmt: skip
    if received != n:
        print(f"the server received {received} messages of {n}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        rows = [[mode, f"{m:,.0f}", f"{cpu_ms[mode]:.2f}"] for mode, m in medians.items()]
        columns = ["mode", "messages/s", "client CPU ms/message"]
        print_table(f"SMTP adapter, STARTTLS ({args.key} key) + AUTH, loopback (medians)", columns, rows)
        print(f"ratio {ratio:.1f}x; load average before {load:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
