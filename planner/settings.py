"""Typed settings, read from ``PLANNER_*`` environment variables and an optional ``planner.toml``."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from planner.clock import format_duration
from planner.core import validation
from planner.core.policy import DEFAULT_BACKOFF_TIERS
from planner.errors import InvalidInput, shown
from planner.setting_values import Duration, Lateness, Margin, Retention, from_json, list_or_json

QUEUES = ("high", "default", "bulk")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


#: What a delivery retention keeps beyond the longest lateness, cap window and backoff interval: a
#: changed zone reaches a local date up to 26 hours back, and a local date is up to 14 hours off UTC.
DELIVERY_RETENTION_FLOOR = timedelta(days=2)


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
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full",
        description="SQLite only: 'full' makes every commit durable before it returns (a power loss "
        "cannot undo a recorded send); 'normal' is several times faster per commit but a power loss can "
        "roll back the last commits, and their messages are sent again.",
    )

    plan_chunk_size: int = Field(1000, ge=1, description="Due subscriptions planned per chunk.")
    plan_concurrency: int = Field(4, ge=1, description="Chunks planned at once (bounded by the pool).")
    horizon: Duration = Field(timedelta(hours=1), description="How far past now a run plans.")
    max_lateness: Lateness = Field(timedelta(hours=4), description="Older occurrences are recorded missed.")
    max_lateness_by_kind: Annotated[dict[str, Lateness], NoDecode, BeforeValidator(from_json)] = Field(
        default_factory=dict, description='Per-kind lateness, JSON, e.g. {"password_reset": "15m"}.'
    )
    max_delivery_wait: Duration = Field(
        timedelta(minutes=15),
        description="A due delivery no worker took for longer makes readiness fail (/readyz, status).",
    )

    quiet_hours_sms: str = Field("21:00-08:00", description="Default SMS quiet hours, local 'HH:MM-HH:MM'.")
    quiet_hours_email: str = Field("", description="Default email quiet hours; empty means none.")

    cap_email: str = Field("10/day", description="Frequency cap per recipient for email (limits notation).")
    cap_sms: str = Field("3/day", description="Frequency cap per recipient for SMS (limits notation).")
    caps_by_kind: Annotated[dict[str, dict[str, str]], NoDecode, BeforeValidator(from_json)] = Field(
        default_factory=dict, description='Per-kind caps, JSON, e.g. {"reminder": {"sms": "1/day"}}.'
    )
    backoff_tiers: Annotated[list[tuple[int, int]], NoDecode, BeforeValidator(from_json)] = Field(
        default_factory=lambda: list(DEFAULT_BACKOFF_TIERS),
        description="Engagement backoff, JSON: [[inactive at least N days, send every M days], ...].",
    )
    backoff_tiers_by_kind: Annotated[
        dict[str, list[tuple[int, int]]], NoDecode, BeforeValidator(from_json)
    ] = Field(default_factory=dict, description="Per-kind backoff tiers, JSON, same shape.")

    kind_queues: Annotated[
        dict[str, Literal["high", "default", "bulk"]], NoDecode, BeforeValidator(from_json)
    ] = Field(default_factory=dict, description='Queue per kind, JSON, e.g. {"password_reset": "high"}.')
    critical_kinds: Annotated[list[str], NoDecode, BeforeValidator(list_or_json)] = Field(
        default_factory=list,
        description="Kinds bypassing quiet hours and caps: a comma list (password_reset,login_code) or JSON.",
    )
    kind_names: Annotated[dict[str, str], NoDecode, BeforeValidator(from_json)] = Field(
        default_factory=dict,
        description='What people read for a kind (the unsubscribe page), JSON, e.g. {"weekly_digest": '
        '"the weekly digest"}; default: the kind in words ("weekly digest messages").',
    )

    email_adapter: str = Field("file", description="Adapter plugin for email (smtp, file, console, ...).")
    sms_adapter: str = Field("file", description="Adapter plugin for SMS (twilio, file, console, ...).")
    outbox_dir: Path = Field(Path("./outbox"), description="Where the file adapter writes.")
    templates_dir: Path | None = Field(None, description="Extra message templates, searched first.")
    default_locale: str = Field(
        "en",
        description="The language (BCP 47) of the templates outside a locale folder, and of the dates "
        "and numbers of recipients without a locale.",
    )

    rate_limit_email: str = Field("100/second", description="Provider throughput limit for email.")
    rate_limit_sms: str = Field("10/second", description="Provider throughput limit for SMS.")

    max_attempts: int = Field(5, ge=1, description="Send attempts before a delivery is dead.")
    retry_base: Duration = Field(timedelta(seconds=30), description="First retry delay.")
    retry_cap: Duration = Field(timedelta(hours=1), description="Longest retry delay.")
    sending_lease: Duration = Field(
        timedelta(seconds=60),
        description="A worker's hold on a delivery it sends, renewed while it lives: a dead worker's "
        "deliveries are recovered this long after it died. At least twice the adapters' timeouts "
        "plus PLANNER_MAX_CLOCK_SKEW.",
    )
    max_clock_skew: Margin = Field(
        timedelta(seconds=5),
        description="How far the hosts' clocks may disagree: a worker never starts a provider call "
        "with less than the adapter's timeout plus this left on its lease.",
    )
    unknown_outcome_delay: Duration = Field(
        timedelta(minutes=15),
        description="After a provider took a message but gave no answer, the one further attempt waits "
        "at least this long (and looks the message up first where the provider allows).",
    )
    delivery_batch_size: int = Field(100, ge=1, description="Deliveries carried by one RQ job.")
    digest_max_events: int = Field(
        50, ge=1, le=1000, description="Events listed in a digest's template; the rest are only counted."
    )
    digest_retention: Duration = Field(
        timedelta(days=30), description="Digest events older than this are dropped (and counted)."
    )
    provider_event_retention: Retention = Field(
        timedelta(days=7),
        description="Applied provider callbacks are remembered this long (repeats change nothing).",
    )
    stored_message_max_bytes: int = Field(
        65536,
        ge=0,
        le=16 * 1024 * 1024,
        description="The copy of each sent (or dead) message kept with its delivery, to show what was "
        "sent: at most this many bytes of subject, bodies and headers, a part too long cut with a "
        "marker; 0 keeps none.",
    )
    stored_message_retention: Retention = Field(
        timedelta(days=30),
        description="Kept copies of sent messages are dropped this long after they were kept.",
    )
    delivery_retention: Retention = Field(
        timedelta(days=90),
        description="Deliveries in a final state (sent, skipped, suppressed, missed, cancelled, dead) due "
        "longer ago than this are pruned with their timelines; open ones never are. At least the "
        "longest PLANNER_MAX_LATENESS, plus the longest cap window or backoff interval, plus 2 days "
        "(a pruned delivery changes no decision). On PostgreSQL whole months are dropped, once all "
        "of a month is this old.",
    )
    audit_retention: Retention = Field(
        timedelta(days=365), description="Audit log entries older than this are pruned."
    )
    engagement_retention: Retention = Field(
        timedelta(days=365),
        description="Engagement events older than this are pruned, except each recipient's latest "
        "(engagement backoff reads only that one).",
    )
    run_retention: Retention = Field(
        timedelta(days=90),
        description="Planner run records (and the digest drop counts, folded into one row) older "
        "than this are pruned.",
    )
    prune_batch_size: int = Field(
        1000, ge=10, le=100_000, description="Rows pruned per transaction (each batch commits on its own)."
    )

    api_token: SecretStr | None = Field(
        None, description="An admin token for the HTTP API, named 'api-token' (see `planner tokens`)."
    )
    public_base_url: str | None = Field(
        None,
        description="The service's public URL (https://planner.example.com): unsubscribe links and "
        "provider callbacks are built on it. Required with the smtp adapter.",
    )
    signing_secret: SecretStr | None = Field(
        None,
        description="A random key (32 bytes or more) signing unsubscribe links and, through keys derived "
        "from it per purpose, the dashboard's sessions and forms (HMAC-SHA256). Required with the smtp "
        "adapter. Unset: `planner serve` signs dashboard sessions with a key made at start, which only "
        "that process knows, until it stops.",
    )
    previous_signing_secrets: Annotated[list[SecretStr], NoDecode, BeforeValidator(list_or_json)] = Field(
        default_factory=list,
        description="Earlier values of PLANNER_SIGNING_SECRET, still accepted when checking a signature "
        "(never used to sign): a comma list or JSON. Rotate by moving the old secret here.",
    )
    ui_idle_timeout: Duration = Field(
        timedelta(minutes=30), description="A dashboard session unused this long ends: sign in again."
    )
    ui_session_lifetime: Duration = Field(
        timedelta(hours=12), description="A dashboard session ends this long after sign-in, used or not."
    )
    http_header_timeout: Duration = Field(
        timedelta(seconds=10),
        description="`planner serve` closes a connection (408) whose request headers are not complete "
        "this long after it opened or after its previous answer.",
    )
    twilio_auth_token: SecretStr | None = Field(
        None,
        description="The Twilio account's auth token (also the twilio adapter's): it signs Twilio's "
        "callbacks (X-Twilio-Signature). Unset: the Twilio webhooks answer 503.",
    )
    mailgun_signing_key: SecretStr | None = Field(
        None, description="Mailgun's HTTP webhook signing key. Unset: /v1/webhooks/mailgun answers 503."
    )
    unsubscribe_mailto: str | None = Field(
        None, description="An address for mailto: unsubscribes, added to List-Unsubscribe when set."
    )
    webhooks_allow_private: bool = Field(
        False,
        description="Outgoing webhooks may go to http:// URLs and to loopback, private and link-local "
        "addresses (development and tests); off, such URLs are refused at registration and delivery.",
    )
    webhooks_timeout: Duration = Field(
        timedelta(seconds=10),
        description="The most one webhook request may take, all of it (look-up, connect, send, read).",
    )
    webhooks_disable_after: Duration = Field(
        timedelta(days=5),
        description="A webhook endpoint whose every attempt failed for this long is disabled (its "
        "events wait, kept, until it is enabled again).",
    )
    webhooks_secret_overlap: Duration = Field(
        timedelta(hours=24),
        description="After `planner webhooks rotate-secret`, the old secret also signs for this long "
        "(unless the rotation gives its own --overlap).",
    )
    webhooks_batch_size: int = Field(
        4, ge=1, le=64, description="Webhook requests a worker makes at once (one thread each)."
    )
    webhooks_retention: Retention = Field(
        timedelta(days=30),
        description="Delivered and failed webhook events (and their attempts) are kept this long.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Logs: JSON lines, readable console lines, or auto (console on a terminal)."
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("expected 'sqlite:///path/planner.db' or 'postgresql+psycopg://user@host/db'")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # unset (or empty): the embedded Redis
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        tcp = parts.scheme in ("redis", "rediss") and bool(parts.hostname)
        if not (tcp or (parts.scheme == "unix" and parts.path)):
            raise ValueError(
                "expected 'redis://host:6379/0', 'rediss://host:6380/0' or 'unix:///path/redis.sock'"
            )
        try:
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError("the port is not a number from 0 to 65535") from None
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator("templates_dir")
    @classmethod
    def _templates_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError("expected an existing directory of templates (one folder per kind)")
        return value

    @field_validator("default_locale")
    @classmethod
    def _default_locale(cls, value: str) -> str:
        from planner.core.validation import locale

        try:
            return locale(value.strip(), "default_locale")
        except InvalidInput as exc:
            raise ValueError(f"expected {exc.expected}") from None

    @field_validator("email_adapter", "sms_adapter")
    @classmethod
    def _adapter_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected an adapter name such as 'smtp', 'twilio', 'file' or 'console'")
        return value.strip()

    @field_validator("kind_names")
    @classmethod
    def _kind_names(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, name in value.items():
            try:
                validation.kind(kind, "kind")
            except InvalidInput as exc:
                raise ValueError(f"{shown(kind)} is not a kind; expected {exc.expected}") from None
            if not name.strip() or len(name) > 100:
                raise ValueError(f"the name of {kind} is {shown(name)}; expected 1 to 100 characters")
        return {kind: name.strip() for kind, name in value.items()}

    @field_validator("stored_message_max_bytes")
    @classmethod
    def _copy_bytes(cls, value: int) -> int:
        if 0 < value < 1024:
            raise ValueError("expected 0 (keep no copy) or at least 1024 bytes")
        return value

    @model_validator(mode="after")
    def _retry_bounds(self) -> Settings:
        if self.retry_cap < self.retry_base:
            raise ValueError("PLANNER_RETRY_CAP must be at least PLANNER_RETRY_BASE")
        return self

    @model_validator(mode="after")
    def _delivery_retention_floor(self) -> Settings:
        floor = delivery_retention_floor(self)
        if self.delivery_retention < floor:
            raise ValueError(
                f"PLANNER_DELIVERY_RETENTION={format_duration(self.delivery_retention)!r}: expected at "
                f"least {format_duration(floor)!r} (the longest PLANNER_MAX_LATENESS, plus the longest "
                "frequency-cap window or backoff interval, plus 2 days), so that a pruned delivery is "
                "never planned again and no cap or backoff decision changes"
            )
        return self

    def unsubscribe_links_problem(self) -> str | None:
        """What keeps the smtp adapter's mail from carrying a one-click unsubscribe (RFC 8058: its
        URL needs a host and a key), or None. Checked where the links are made and followed (the
        worker, ``planner serve``), not when the settings load: ``planner db upgrade`` needs neither."""
        if self.email_adapter != "smtp":
            return None
        if not self.public_base_url:
            return (
                "PLANNER_PUBLIC_BASE_URL is unset; expected the service's public URL "
                "(https://planner.example.com), which the smtp adapter's unsubscribe links need"
            )
        if self.signing_secret is None or not self.signing_secret.get_secret_value():
            return (
                "PLANNER_SIGNING_SECRET is unset; expected a random key (32 bytes or more) "
                "signing the smtp adapter's unsubscribe links"
            )
        return None

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")) or len(value) > 200 or len(value.split()) != 1:
            raise ValueError("expected an http(s) URL such as 'https://planner.example.com'")
        return value.rstrip("/")

    @field_validator("cap_email", "cap_sms", "rate_limit_email", "rate_limit_sms")
    @classmethod
    def _limit_notation(cls, value: str) -> str:
        from planner.core.limit_notation import parse_limit  # limits' notation, without its 0.2 s import

        try:
            parse_limit(value)
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


def delivery_retention_floor(settings: Settings) -> timedelta:
    """The shortest delivery retention that changes no decision of the planner.

    A pruned occurrence must never be planned again: the cursor only moves forward, except that a
    changed schedule restarts it from now, where a changed zone can reach a local date up to 26 hours
    back (UTC-12 to UTC+14), and an occurrence older than the lateness is only ever recorded missed.
    The planner also reads past deliveries: those counted against a cap (its window back) and a
    subscription's last send (engagement backoff, the longest interval back); a pruned one must be
    older than either could reach.
    """
    from planner.core.limit_notation import parse_limit

    latest = max([settings.max_lateness, *settings.max_lateness_by_kind.values()])
    caps = [settings.cap_email, settings.cap_sms]
    caps += [text for by_channel in settings.caps_by_kind.values() for text in by_channel.values()]
    windows = [timedelta(0)]
    for text in caps:
        with contextlib.suppress(ValueError):  # a bad cap is the policy's to report, by name
            windows.append(timedelta(seconds=parse_limit(text)[1]))
    tiers = [settings.backoff_tiers, *settings.backoff_tiers_by_kind.values()]
    intervals = [timedelta(days=interval) for tier_list in tiers for _, interval in tier_list]
    return latest + max([*windows, *intervals]) + DELIVERY_RETENTION_FLOOR


def settings_problems(exc: ValidationError) -> str:
    """One line naming each bad ``PLANNER_*`` variable, its value (cut short) and the complaint."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        name = "PLANNER_" + loc[0].upper() + "".join(f"[{part}]" for part in loc[1:]) if loc else ""
        if not loc:
            problems.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{name}={shown(error.get('input'))}: {message}")
    return "; ".join(problems)
