"""Reading and validating adapter options, which always arrive as strings."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Mapping

from adapters.errors import AdapterConfigError

ENV_PREFIX = "PLANNER_"


def options_from_env(adapter_name: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Collect ``PLANNER_<ADAPTER>_<OPTION>`` variables as ``{option: value}`` with lower-case names."""
    prefix = f"{ENV_PREFIX}{_env_part(adapter_name)}_"
    return {
        key[len(prefix) :].lower(): value
        for key, value in environ.items()
        if key.startswith(prefix) and len(key) > len(prefix)
    }


def _env_part(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "_", name).upper()


def setting_name(adapter: str, option: str) -> str:
    """The environment variable an operator edits to change ``option``; errors name it."""
    return f"{ENV_PREFIX}{_env_part(adapter)}_{_env_part(option)}"


def config_error(
    adapter: str, option: str, value: object, expected: str, *, secret: bool = False
) -> AdapterConfigError:
    shown = "<hidden>" if secret else repr(value)
    return AdapterConfigError(
        f"{setting_name(adapter, option)} ({option}={shown}) is invalid; expected {expected}", option=option
    )


def check_timeout(adapter: str, timeout: float) -> float:
    if not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
        raise config_error(adapter, "timeout", timeout, "a positive number of seconds")
    return float(timeout)


class OptionReader:
    """Typed access to one adapter's string options, with errors that name the variable to fix."""

    def __init__(self, adapter: str, options: Mapping[str, str], known: Collection[str]) -> None:
        self.adapter = adapter
        # Blank values count as unset: `PLANNER_SMTP_USERNAME=` in a .env file means "none".
        self._options = {k.lower(): v.strip() for k, v in options.items() if v.strip()}
        # A typo such as PLANNER_SMTP_PASWORD would otherwise be silently ignored.
        unknown = sorted(set(self._options) - set(known))
        if unknown:
            raise AdapterConfigError(
                f"unknown {adapter} option(s): {', '.join(unknown)} "
                f"(from {', '.join(setting_name(adapter, u) for u in unknown)}); "
                f"known options: {', '.join(sorted(known)) or 'none'}",
                option=unknown[0],
            )

    def get(self, option: str, default: str | None = None) -> str | None:
        return self._options.get(option, default)

    def require(self, option: str, expected: str) -> str:
        value = self._options.get(option)
        if value is None:
            raise AdapterConfigError(
                f"{setting_name(self.adapter, option)} ({option}) is required; expected {expected}",
                option=option,
            )
        return value

    def get_float(self, option: str, default: float) -> float:
        raw = self._options.get(option)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise config_error(self.adapter, option, raw, "a positive number of seconds") from None
        if not 0 < value < math.inf:
            raise config_error(self.adapter, option, raw, "a positive number of seconds")
        return value

    def get_int(self, option: str, *, low: int, high: int) -> int | None:
        raw = self._options.get(option)
        if raw is None:
            return None
        if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
            raise config_error(self.adapter, option, raw, f"an integer from {low} to {high}")
        return int(raw)

    def get_choice(self, option: str, choices: Collection[str], default: str) -> str:
        raw = self._options.get(option)
        if raw is None:
            return default
        if raw.lower() not in choices:
            raise config_error(self.adapter, option, raw, f"one of {', '.join(sorted(choices))}")
        return raw.lower()
