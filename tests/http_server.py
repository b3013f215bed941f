"""The API served as ``planner serve`` serves it: uvicorn in a thread, with the same configuration
(:func:`planner.api.server.server_config`: the header deadline and size bound)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from planner.api import create_api
from planner.api.server import server_config
from planner.app import App
from tests.servers import free_port


@contextmanager
def serving(app: App) -> Iterator[str]:
    """``planner serve``'s server for ``app`` on a loopback port, for the block; its base URL."""
    config = server_config(create_api(app), app.settings, "127.0.0.1", free_port(), lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


