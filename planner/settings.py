"""Typed settings, read from ``PLANNER_*`` environment variables and an optional ``planner.toml``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from planner.errors import shown

DEFAULT_BACKOFF_TIERS: list[tuple[int, int]] = [(0, 1), (3, 2), (7, 3), (14, 7), (30, 14)]
"""(inactive for at least N days, send at most every M days)."""

QUEUES = ("high", "default", "bulk")


class Settings(BaseSettings):
    """Every knob of the service. Environment variables win over ``planner.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="PLANNER_",
        toml_file="planner.toml",
        extra="ignore",
        validate_default=True,
    )

    database_url: str = Field(
        "sqlite:///./planner.db",
        description="SQLAlchemy URL; a SQLite file by default, postgresql+psycopg://... for PostgreSQL.",
    )
    redis_url: str | None = Field(
        None, description="Redis server URL; unset starts an embedded Redis beside the SQLite file."
    )
    db_pool_size: int = Field(8, ge=1, description="Connections in the database pool.")

    plan_chunk_size: int = Field(1000, ge=1, description="Due subscriptions planned per chunk.")
    plan_concurrency: int = Field(4, ge=1, description="Chunks planned at once (bounded by the pool).")
    horizon: timedelta = Field(timedelta(hours=1), description="How far past now a run plans.")
    max_lateness: timedelta = Field(timedelta(hours=4), description="Older occurrences are recorded missed.")
    max_lateness_by_kind: dict[str, timedelta] = Field(
        default_factory=dict, description='Per-kind lateness, e.g. {"password_reset": "PT15M"}.'
    )

    quiet_hours_sms: str = Field("21:00-08:00", description="Default SMS quiet hours, local 'HH:MM-HH:MM'.")
    quiet_hours_email: str = Field("", description="Default email quiet hours; empty means none.")

    cap_email: str = Field("10/day", description="Frequency cap per recipient for email (limits notation).")
    cap_sms: str = Field("3/day", description="Frequency cap per recipient for SMS (limits notation).")
    caps_by_kind: dict[str, dict[str, str]] = Field(
        default_factory=dict, description='Per-kind caps, e.g. {"reminder": {"sms": "1/day"}}.'
    )
    backoff_tiers: list[tuple[int, int]] = Field(
        default_factory=lambda: list(DEFAULT_BACKOFF_TIERS),
        description="Engagement backoff: [[inactive at least N days, send every M days], ...].",
    )
    backoff_tiers_by_kind: dict[str, list[tuple[int, int]]] = Field(
        default_factory=dict, description="Per-kind backoff tiers, same shape."
    )

    kind_queues: dict[str, Literal["high", "default", "bulk"]] = Field(
        default_factory=dict, description='Queue per kind, e.g. {"password_reset": "high"}.'
    )
    critical_kinds: list[str] = Field(
        default_factory=list, description="Kinds that bypass quiet hours and caps (password resets)."
    )

    email_adapter: str = Field("file", description="Adapter plugin for email (smtp, file, console, ...).")
    sms_adapter: str = Field("file", description="Adapter plugin for SMS (twilio, file, console, ...).")
    outbox_dir: Path = Field(Path("./outbox"), description="Where the file adapter writes.")
    templates_dir: Path | None = Field(None, description="Extra message templates, searched first.")

    rate_limit_email: str = Field("100/second", description="Provider throughput limit for email.")
    rate_limit_sms: str = Field("10/second", description="Provider throughput limit for SMS.")

    max_attempts: int = Field(5, ge=1, description="Send attempts before a delivery is dead.")
    retry_base: timedelta = Field(timedelta(seconds=30), description="First retry delay.")
    retry_cap: timedelta = Field(timedelta(hours=1), description="Longest retry delay.")
    sending_lease: timedelta = Field(
        timedelta(minutes=5), description="A delivery in 'sending' longer than this is recovered."
    )
    delivery_batch_size: int = Field(100, ge=1, description="Deliveries carried by one RQ job.")

    api_token: SecretStr | None = Field(None, description="Bearer token for the HTTP API.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Logs: JSON lines, readable console lines, or auto (console on a terminal)."
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("cap_email", "cap_sms", "rate_limit_email", "rate_limit_sms")
    @classmethod
    def _limit_notation(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not in the limits notation, e.g. '10/day'") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return Path(path) if path and path != ":memory:" else None

    @property
    def embedded_redis_path(self) -> Path:
        """The embedded Redis keeps its data beside the SQLite file (or in the working directory)."""
        base = self.sqlite_path
        return (base.parent if base else Path(".")) / "planner-redis.rdb"

    def queue_for_kind(self, kind: str) -> str:
        return self.kind_queues.get(kind, "default")

    def max_lateness_for(self, kind: str) -> timedelta:
        return self.max_lateness_by_kind.get(kind, self.max_lateness)

    def cap_for(self, kind: str, channel: str) -> str:
        default = self.cap_email if channel == "email" else self.cap_sms
        return self.caps_by_kind.get(kind, {}).get(channel, default)

    def backoff_tiers_for(self, kind: str) -> list[tuple[int, int]]:
        return self.backoff_tiers_by_kind.get(kind, self.backoff_tiers)

    def rate_limit_for(self, channel: str) -> str:
        return self.rate_limit_email if channel == "email" else self.rate_limit_sms

    def adapter_for(self, channel: str) -> str:
        return self.email_adapter if channel == "email" else self.sms_adapter


def settings_problems(exc: ValidationError) -> str:
    """One line naming each bad ``PLANNER_*`` variable, its value (cut short) and the complaint."""
    problems = []
    for error in exc.errors():
        name = "PLANNER_" + str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{name}={shown(error.get('input'))}: {message}")
    return "; ".join(problems)
