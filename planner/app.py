"""The service's dependencies in one object, built once at the edge and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from planner.clock import Clock, utcnow
from planner.dispatch.redis import connect_redis
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

    def upgrade_database(self) -> None:
        db.upgrade(self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
