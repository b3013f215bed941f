"""The text of ``planner --help``, built without importing the settings machinery.

Importing pydantic-settings (and what ``Settings`` pulls in) costs more than the whole help budget,
so the list of ``PLANNER_*`` variables comes from :mod:`planner.cli._settings_reference`, a module
generated from ``Settings`` by :func:`generate_reference`. A test compares the two, so a new or
changed setting fails the suite until the reference is regenerated with
``python -m planner.cli.help_text`` (then ``ruff format``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from planner.cli._settings_reference import ADAPTERS, SETTINGS

REFERENCE = Path(__file__).with_name("_settings_reference.py")


def settings_help() -> str:
    # "\b" keeps Click from re-flowing the block into one paragraph.
    lines = ["\b"]
    for name, default, description in SETTINGS:
        lines.append(f"PLANNER_{name.upper()} = {default}")
        if description:
            lines.append(f"    {description}")
    return "\n\n".join(
        [
            "Plans scheduled notifications in each recipient's local time.",
            "Configuration: environment variables (or the same names, lower case and without the "
            "prefix, in planner.toml). Durations are 30s, 5m, 4h, 1d (or 1h30m) or ISO 8601 (PT4H); "
            "per-kind maps are JSON; PLANNER_CRITICAL_KINDS is a comma list or JSON. "
            "PLANNER_DEBUG=1 (or --debug) shows tracebacks instead of one-line errors.",
            "\n".join(lines),
            adapter_help(),
        ]
    )


def adapter_help() -> str:
    """Each installed adapter's ``PLANNER_<ADAPTER>_<OPTION>`` variables (read by the worker)."""
    from adapters import adapter_entry_points, load_adapter_class, setting_name

    lines = ["\b", "Adapter options (the adapter named by PLANNER_EMAIL_ADAPTER / PLANNER_SMS_ADAPTER):"]
    for name, value in adapter_entry_points().items():
        # The bundled adapters are described by the reference (importing httpx alone costs
        # 0.1 s); a third-party plugin is loaded to read its options.
        known = ADAPTERS.get(value)
        if known is not None:
            channels, options = known
        else:
            try:
                adapter = load_adapter_class(name)
            except Exception as exc:  # a broken plugin must not break --help
                lines.append(f"{name}: cannot be loaded ({type(exc).__name__})")
                continue
            channels, options = _described(adapter)
        shown = " ".join(setting_name(name, option) for option in options) or "(no options)"
        lines.append(f"{name} ({channels}): {shown}")
    return "\n".join(lines)


def _described(adapter: type) -> tuple[str, tuple[str, ...]]:
    """(channels as shown, sorted option names) of an adapter class."""
    return ", ".join(sorted(adapter.channels)), tuple(sorted(getattr(adapter, "options", ())))  # type: ignore[attr-defined]


def _show_default(value: object) -> str:
    from planner.clock import format_duration

    if isinstance(value, timedelta):
        return format_duration(value)
    if value is None or value == "":
        return "unset"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def reference_rows() -> tuple[tuple[str, str, str], ...]:
    """(field, default as shown, description) of each of ``Settings``' fields, in order."""
    from planner.settings import Settings

    rows = []
    for name, info in Settings.model_fields.items():
        default = info.default if info.default_factory is None else info.default_factory()  # type: ignore[call-arg]
        rows.append((name, _show_default(default), info.description or ""))
    return tuple(rows)


#: The adapters shipped in this distribution, by entry-point value.
BUNDLED_ADAPTERS = (
    "adapters.capture:CaptureAdapter",
    "adapters.console:ConsoleAdapter",
    "adapters.file:FileAdapter",
    "adapters.smtp:SmtpAdapter",
    "adapters.twilio:TwilioAdapter",
)


def reference_adapters() -> dict[str, tuple[str, tuple[str, ...]]]:
    """(channels, options) of each bundled adapter, loaded."""
    from importlib import import_module

    described = {}
    for value in BUNDLED_ADAPTERS:
        module, _, attribute = value.partition(":")
        described[value] = _described(getattr(import_module(module), attribute))
    return described


def generate_reference() -> str:
    """The source of :mod:`planner.cli._settings_reference`."""
    rows = [f"    {row!r}," for row in reference_rows()]
    adapters = [f"    {value!r}: {described!r}," for value, described in reference_adapters().items()]
    return "\n".join(
        [
            '"""Generated from ``planner.settings.Settings`` by ``python -m planner.cli.help_text``;',
            'do not edit (tests/cli/test_cli_help.py fails when it is out of date)."""',
            "",
            "#: (field, default as shown, description) for each setting, in declaration order.",
            "SETTINGS: tuple[tuple[str, str, str], ...] = (",
            *rows,
            ")",
            "",
            "#: (channels as shown, option names) of each bundled adapter, by entry-point value.",
            "ADAPTERS: dict[str, tuple[str, tuple[str, ...]]] = {",
            *adapters,
            "}",
            "",
        ]
    )


if __name__ == "__main__":
    REFERENCE.write_text(generate_reference())
