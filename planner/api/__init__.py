"""The HTTP API (``planner serve``): the CLI's operations, health checks and Prometheus metrics.

:func:`create_api` makes the FastAPI application around one :class:`~planner.app.App`. Inside:
``app`` includes the routers of ``routes/`` (one module per topic); routes ask for the service and
the caller through ``dependencies`` (bearer tokens, scopes, the audit log), take their bodies and
parameters from ``schemas``, and answer errors through ``problems`` (RFC 9457); every router is
made with ``routing``'s route class (the caller before the body, one JSON parser); ``middleware``
holds the unknown-query guard, idempotency keys, OPTIONS/Allow and the unsubscribe page's headers;
``limits`` bounds every body by route; ``server`` is how ``planner serve`` runs it (uvicorn, with a
header deadline).
"""

from planner.api.app import create_api
from planner.api.routes.health import readiness

__all__ = ["create_api", "readiness"]
