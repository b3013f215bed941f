"""The trivial RQ job of the bare-RQ baseline in ``deliver_bench.py`` (imported by the rq worker)."""

from __future__ import annotations


def noop(message: int) -> int:
    """One "message": do nothing, so what is measured is RQ's own cost per job."""
    return message
