"""Never imported at run time: makes mypy prove each built-in class satisfies the Adapter protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.base import Adapter
    from adapters.capture import CaptureAdapter
    from adapters.console import ConsoleAdapter
    from adapters.file import FileAdapter
    from adapters.smtp import SmtpAdapter
    from adapters.twilio import TwilioAdapter

    _BUILT_IN: tuple[type[Adapter], ...] = (
        SmtpAdapter,
        TwilioAdapter,
        FileAdapter,
        ConsoleAdapter,
        CaptureAdapter,
    )
