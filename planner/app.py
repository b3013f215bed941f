"""The composition root: the service's dependencies in one object, built once at the edge and passed down.

Everything below this module receives what it needs (sessions, Redis, policy, clock) as arguments;
only here are settings turned into the objects that use them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

import redis
from redis import Redis, RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from adapters import Adapter, AdapterConfigError, create_adapter, load_adapter_class, options_from_env
from adapters.base import call_deadline
from adapters.options import setting_name
from planner.clock import Clock, format_duration, utcnow
from planner.core.policy import PlanningPolicy
from planner.core.retry import RetryPolicy
from planner.dispatch.redis import connect_redis
from planner.errors import ConcurrentChange, ConfigurationError, InvalidInput, PlannerError, Unavailable
from planner.run.runner import PlannerRunner, RunOptions
from planner.settings import Settings
from planner.store import db

if TYPE_CHECKING:
    # The worker's machinery (jinja2, limits, the deliverer) loads only where it is built: a
    # `planner run` from cron should not pay for it.
    from planner.delivery.deliverer import Deliverer
    from planner.delivery.message import UnsubscribeLinks
    from planner.delivery.templating import Renderer
    from planner.delivery.webhook_sender import WebhookSender


@dataclass
class App:
    settings: Settings
    clock: Clock = field(default=utcnow)

    @cached_property
    def engine(self) -> Engine:
        settings = self.settings
        return db.create_db_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
        )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.make_session_factory(self.engine)

    @cached_property
    def templates(self) -> Renderer:
        """The message templates, as the worker renders them: the boundary checks kinds against it."""
        from planner.delivery.templating import Renderer

        return Renderer(self.settings.templates_dir, self.settings.default_locale)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect_redis(self.settings.redis_url, self.settings.embedded_redis_path)

    @cached_property
    def policy(self) -> PlanningPolicy:
        """The planning rules' parameters, parsed once from the settings."""
        return PlanningPolicy.from_settings(self.settings)

    @property
    def retry_policy(self) -> RetryPolicy:
        return retry_policy(self.settings)

    def require_redis(self) -> Redis:
        """Redis, answering; :class:`~planner.errors.Unavailable` (HTTP 503) when it does not."""
        try:
            self.redis.ping()
        except RedisError as exc:
            raise redis_unavailable(exc) from exc
        return self.redis

    def upgrade_database(self) -> None:
        db.upgrade(self.engine)

    def ensure_schema(self) -> None:
        """The embedded SQLite database creates and migrates itself on first use; PostgreSQL is
        never migrated behind the operator's back: an old schema is an error naming the command."""
        if db.is_at_head(self.engine):
            return
        current, head = db.current_revision(self.engine), db.head_revision()
        if current == head:
            return
        if self.settings.is_sqlite:
            self.upgrade_database()
            return
        raise Unavailable(
            "database",
            f"the schema is at revision {current or 'none (never upgraded)'}, this planner needs {head}",
            "run `planner db upgrade`",
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_attempts, base=settings.retry_base, cap=settings.retry_cap)


def build_runner(app: App, progress: Callable[[int], None] | None = None) -> PlannerRunner:
    """The planner runner the service's settings describe (chunk size, concurrency, batch size)."""
    settings = app.settings
    return PlannerRunner(
        app.sessions,
        app.redis,
        app.policy,
        RunOptions(
            chunk_size=settings.plan_chunk_size,
            concurrency=min(settings.plan_concurrency, settings.db_pool_size),
            batch_size=settings.delivery_batch_size,
        ),
        progress=progress,
    )


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    """One adapter per channel, as configured; a channel sharing an adapter name shares the instance."""
    made: dict[str, Adapter] = {}
    by_channel: dict[str, Adapter] = {}
    for channel in ("email", "sms"):
        name = settings.adapter_for(channel)
        served = load_adapter_class(name).channels
        if channel not in served:
            raise ConfigurationError(
                f"PLANNER_{channel.upper()}_ADAPTER={name!r}: adapter {name!r} sends "
                f"{', '.join(sorted(served))}, not {channel}; expected an adapter for {channel}"
            )
        if name not in made:
            options = options_from_env(name)
            if name == "file":
                options.setdefault("directory", str(settings.outbox_dir))
            callback = status_callback_url(settings)
            if callback and "status_callback" in getattr(load_adapter_class(name), "options", ()):
                options.setdefault("status_callback", callback)
            made[name] = create_adapter(name, options)
        by_channel[channel] = made[name]
    return by_channel


#: Where Twilio posts message statuses, under PLANNER_PUBLIC_BASE_URL.
STATUS_CALLBACK_PATH = "/v1/webhooks/twilio/status"


def status_callback_url(settings: Settings) -> str | None:
    """The public URL of the SMS status callback, when the service has a public URL."""
    return f"{settings.public_base_url}{STATUS_CALLBACK_PATH}" if settings.public_base_url else None


#: Adapter options whose values must never be stored or logged.
_SECRET_OPTION = ("password", "token", "secret", "key")


def adapter_secrets(settings: Settings) -> list[str]:
    """The secret option values of the configured adapters, for redacting error text."""
    names = {settings.adapter_for(channel) for channel in ("email", "sms")}
    return [
        value
        for name in sorted(names)
        for option, value in options_from_env(name).items()
        if any(word in option for word in _SECRET_OPTION) and value
    ]


def build_deliverer(
    app: App,
    adapters: Mapping[str, Adapter] | None = None,
    renderer: Renderer | None = None,
) -> Deliverer:
    from planner.delivery.deliverer import Deliverer
    from planner.delivery.templating import Renderer
    from planner.dispatch.ratelimit import ProviderLimiter

    settings = app.settings
    require_unsubscribe_links(settings)
    adapters = adapters if adapters is not None else build_adapters(settings)
    check_lease(settings.sending_lease, settings.max_clock_skew, adapters)
    return Deliverer(
        app.sessions,
        app.redis,
        adapters,
        renderer or Renderer(settings.templates_dir, settings.default_locale),
        app.policy,
        app.retry_policy,
        limiter=ProviderLimiter(
            app.redis, {"email": settings.rate_limit_email, "sms": settings.rate_limit_sms}
        ),
        lease=settings.sending_lease,
        batch_size=settings.delivery_batch_size,
        clock=app.clock,
        secrets=adapter_secrets(settings),
        unsubscribe=unsubscribe_links(settings),
        digest_cap=settings.digest_max_events,
        unknown_delay=settings.unknown_outcome_delay,
        clock_skew=settings.max_clock_skew,
        copy_bytes=settings.stored_message_max_bytes,
    )


def build_webhook_sender(app: App) -> WebhookSender:
    """The worker's poster of outgoing webhooks, as the settings describe it."""
    from planner.delivery.webhook_http import WebhookClient
    from planner.delivery.webhook_sender import WebhookSender

    settings = app.settings
    client = WebhookClient(settings.webhooks_timeout.total_seconds(), settings.webhooks_allow_private)
    return WebhookSender(
        app.sessions,
        client,
        clock=app.clock,
        disable_after=settings.webhooks_disable_after,
        batch_size=settings.webhooks_batch_size,
        clock_skew=settings.max_clock_skew,
    )


def check_lease(lease: timedelta, skew: timedelta, adapters: Mapping[str, Adapter]) -> None:
    """Refuse a lease a provider call could outlast: it must hold at least two of the longest calls
    (the adapters' deadlines) plus the clock skew between hosts, or a live worker's delivery could be
    recovered while its message is in flight."""
    for adapter in {id(a): a for a in adapters.values()}.values():
        deadline = call_deadline(adapter)
        if deadline is None:
            continue
        needed = 2 * timedelta(seconds=deadline) + skew
        if lease < needed:
            timeout = setting_name(adapter.name, "timeout")
            raise ConfigurationError(
                f"PLANNER_SENDING_LEASE: {format_duration(lease)!r} is invalid; expected at least "
                f"{format_duration(needed)}: twice {timeout} ({deadline:g}s) plus PLANNER_MAX_CLOCK_SKEW "
                f"({format_duration(skew)})"
            )


def require_unsubscribe_links(settings: Settings) -> None:
    """Refuse to send real mail (or to serve the links it carries) without its one-click unsubscribe."""
    problem = settings.unsubscribe_links_problem()
    if problem is not None:
        raise ConfigurationError(f"invalid configuration: {problem}")


def unsubscribe_links(settings: Settings) -> UnsubscribeLinks | None:
    """The one-click unsubscribe links, when the service has a public URL and a signing key."""
    from planner.delivery.message import UnsubscribeLinks

    secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
    if not settings.public_base_url or not secret:
        return None
    return UnsubscribeLinks(settings.public_base_url, secret.encode(), settings.unsubscribe_mailto)


#: What an outage of a dependency raises (the database, Redis, a provider refusing the adapter's
#: settings): the interfaces answer these as "unavailable" (HTTP 503), never as a defect.
OUTAGES: tuple[type[Exception], ...] = (RedisError, SQLAlchemyError, AdapterConfigError)


def redis_unavailable(exc: BaseException) -> Unavailable:
    return Unavailable(
        "Redis", f"{type(exc).__name__}: {exc}", "check PLANNER_REDIS_URL and that the server is running"
    )


def translate_error(exc: BaseException) -> PlannerError | None:
    """The project error for a database or Redis failure, or ``None`` when it is something else.

    The CLI's :func:`~planner.cli.common.service` and the API's handler both call this, so a
    closed port or a never-upgraded database reads the same everywhere.
    """
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    from adapters import AdapterConfigError

    if isinstance(exc, PlannerError):
        return exc
    if isinstance(exc, AdapterConfigError):
        return ConfigurationError(f"adapter configuration: {exc}")
    if isinstance(exc, OSError) and exc.filename is not None:
        return InvalidInput("file", str(exc.filename), f"a readable file ({exc.strerror})")
    if isinstance(exc, redis.RedisError):
        return redis_unavailable(exc)
    if db.lost_a_race(exc):
        return ConcurrentChange("a concurrent request created the same record first")
    if db.lost_to_a_conflict(exc):
        return ConcurrentChange("the database gave way to a concurrent change; nothing was changed")
    if isinstance(exc, OperationalError | ProgrammingError):
        text = str(exc.orig) if exc.orig is not None else str(exc)
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        if "no such table" in text or ("does not exist" in text and "relation" in text):
            return Unavailable("database", f"schema missing ({first})", "run `planner db upgrade`")
        if isinstance(exc, OperationalError):
            return Unavailable("database", first, "check PLANNER_DATABASE_URL and that the server is running")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Unavailable("database", "connection lost", "check that the server is running")
    return None
