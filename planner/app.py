"""The composition root: the service's dependencies in one object, built once at the edge and passed down.

Everything below this module receives what it needs (sessions, Redis, policy, clock) as arguments;
only here are settings turned into the objects that use them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adapters import Adapter, create_adapter, options_from_env
from planner.clock import Clock, utcnow
from planner.core.policy import PlanningPolicy
from planner.core.retry import RetryPolicy
from planner.delivery.deliverer import Deliverer
from planner.delivery.templating import Renderer
from planner.dispatch.ratelimit import ProviderLimiter
from planner.dispatch.redis import connect_redis
from planner.run.runner import PlannerRunner, RunOptions
from planner.settings import Settings
from planner.store import db


@dataclass
class App:
    settings: Settings
    clock: Clock = field(default=utcnow)

    @cached_property
    def engine(self) -> Engine:
        return db.create_db_engine(self.settings.database_url, pool_size=self.settings.db_pool_size)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.make_session_factory(self.engine)

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

    def upgrade_database(self) -> None:
        db.upgrade(self.engine)

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
        if name not in made:
            options = options_from_env(name)
            if name == "file":
                options.setdefault("directory", str(settings.outbox_dir))
            made[name] = create_adapter(name, options)
        by_channel[channel] = made[name]
    return by_channel


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
    settings = app.settings
    return Deliverer(
        app.sessions,
        app.redis,
        adapters if adapters is not None else build_adapters(settings),
        renderer or Renderer(settings.templates_dir),
        app.policy,
        app.retry_policy,
        limiter=ProviderLimiter(
            app.redis, {"email": settings.rate_limit_email, "sms": settings.rate_limit_sms}
        ),
        lease=settings.sending_lease,
        batch_size=settings.delivery_batch_size,
        clock=app.clock,
        secrets=adapter_secrets(settings),
    )
