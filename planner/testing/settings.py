"""Settings of a kit service: the service defaults plus a test's overrides, never the environment.

A developer's ``PLANNER_*`` variables or a ``planner.toml`` in the working directory must not change
what a test sees (nor point it at a real database).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from planner.settings import Settings

KIT_DEFAULTS: Final[Mapping[str, Any]] = {
    # High enough never to throttle a test; set them lower to test the provider limits.
    "rate_limit_email": "100000/second",
    "rate_limit_sms": "100000/second",
}
OWNED_SETTINGS: Final = frozenset({"database_url", "redis_url", "email_adapter", "sms_adapter", "outbox_dir"})


def kit_database(directory: Path) -> Path:
    """The SQLite file of the kit service in ``directory``."""
    return directory / "planner.db"


def kit_settings(directory: Path, redis_url: str, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings for a kit service: defaults, then ``overrides``; never the environment or planner.toml.

    A developer's ``PLANNER_*`` variables or a ``planner.toml`` in the working directory must not
    change what a test sees (nor point it at a real database).
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise ValueError(
            f"unknown planner setting(s) {unknown}; expected some of {sorted(Settings.model_fields)}"
        )
    owned = sorted(set(overrides) & OWNED_SETTINGS)
    if owned:
        raise ValueError(
            f"the testing kit owns {owned}: it runs its own SQLite file, Redis and capture adapter"
        )
    values: dict[str, Any] = {
        **KIT_DEFAULTS,
        **overrides,
        "database_url": f"sqlite:///{kit_database(directory)}",
        "redis_url": redis_url,
        "email_adapter": "capture",
        "sms_adapter": "capture",
        "outbox_dir": directory / "outbox",
    }
    return _KitSettings(**values)


class _KitSettings(Settings):
    model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": None})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
