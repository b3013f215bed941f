"""RQ job entry points. RQ stores a job's function by name (``planner.jobs.deliver_batch``), so the
function finds its :class:`~planner.delivery.deliverer.Deliverer` in the context of the process
that runs it: ``planner worker`` and the testing kit run jobs inside :func:`serving`.

A context variable, not a module global built from the environment: nothing here reads settings,
and two kit services in one process never see each other's deliverer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict
from typing import Any

from planner.delivery.deliverer import Deliverer
from planner.errors import ConfigurationError

_current: ContextVar[Deliverer | None] = ContextVar("planner_deliverer", default=None)


@contextmanager
def serving(deliverer: Deliverer) -> Iterator[Deliverer]:
    """Run the jobs started inside this block with ``deliverer``."""
    token = _current.set(deliverer)
    try:
        yield deliverer
    finally:
        _current.reset(token)


def current() -> Deliverer | None:
    """The deliverer jobs run with here, if any."""
    return _current.get()


def deliver_batch(delivery_ids: list[int]) -> dict[str, Any]:
    """Send the deliveries of ``delivery_ids`` this job still carries; each is claimed, sent and
    recorded on its own. A delivery given to another job since (a retry, a recovered lease) is that
    job's: a duplicate or stale copy of this one claims nothing."""
    deliverer = _current.get()
    if deliverer is None:
        raise ConfigurationError(
            "planner.jobs.deliver_batch ran outside `planner worker`: start workers with `planner worker` "
            "(a plain `rq worker` has no adapters, templates or policy)"
        )
    from rq import get_current_job

    job = get_current_job()
    return asdict(deliverer.deliver_batch(delivery_ids, None if job is None else job.id))
