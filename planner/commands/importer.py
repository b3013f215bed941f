"""Validated import of recipients, subscriptions and engagement from JSON Lines.

Every line is validated (:mod:`planner.core.import_records`) before anything is written; by default
one bad line imports nothing. The records are then written in batches
(:class:`~planner.commands.import_writer.Importer`), a constant number of statements per batch.
Engagement events are keyed by (recipient, event, instant), so importing a file twice records each
event once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from planner.commands.import_writer import Importer, ImportReport
from planner.core.import_records import (
    EngagementRecord,
    LineError,
    RecipientRecord,
    Record,
    parse_lines,
    required_templates,
)
from planner.errors import InvalidInput, PlannerError, shown
from planner.store.db import Session, SessionFactory, transaction_retried_once

__all__ = ["ImportFailed", "ImportReport", "import_file", "import_lines"]


class ImportFailed(PlannerError):
    """The import was atomic and at least one line was invalid: nothing was written."""

    def __init__(self, errors: Sequence[LineError]) -> None:
        self.errors = list(errors)
        shown = "\n".join(str(e) for e in self.errors[:20])
        more = f"\n... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(f"{len(self.errors)} invalid line(s); nothing was imported:\n{shown}{more}")


def import_lines(
    factory: SessionFactory,
    lines: Iterable[str | bytes],
    now: datetime,
    *,
    skip_invalid: bool = False,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    require_template: Callable[[str, str, str], None] | None = None,
) -> ImportReport:
    """Validate every line, then write them in batches inside one transaction.

    Atomic by default: any invalid line (including an engagement event for an unknown recipient)
    raises :class:`ImportFailed` and nothing is written. With ``skip_invalid`` the good lines are
    imported and the bad ones are listed in the report. ``require_template(kind, channel, field)``
    (the service's :meth:`~planner.delivery.templating.Renderer.require`), when given, refuses a
    subscription whose deliveries could never be rendered.
    """
    report = ImportReport()
    records: list[Record] = []
    for item in parse_lines(lines):
        if isinstance(item, LineError):
            report.errors.append(item)
            continue
        error = _template_error(item, require_template) if require_template is not None else None
        if error is not None:
            report.errors.append(error)
        else:
            records.append(item)
    report.lines = len(records) + len(report.errors)
    if report.errors and not skip_invalid:
        raise ImportFailed(report.errors)

    def write(session: Session) -> ImportReport:
        attempt = ImportReport(lines=report.lines, errors=list(report.errors))
        _write(Importer(session, now, attempt), records, batch_size, progress, skip_invalid)
        return attempt

    # Two imports creating the same recipient: the one that loses the race writes again, as updates.
    written = transaction_retried_once(factory, write)
    written.errors.sort(key=lambda e: e.line)
    return written


def _write(
    importer: Importer,
    records: Sequence[Record],
    batch_size: int,
    progress: Callable[[int], None] | None,
    skip_invalid: bool,
) -> None:
    """The records, in batches, in the importer's transaction."""
    recipients = [r for r in records if isinstance(r, RecipientRecord)]
    for start in range(0, len(recipients), batch_size):
        batch = recipients[start : start + batch_size]
        importer.recipients(batch)
        if progress:
            progress(len(batch))
    engagement = [r for r in records if isinstance(r, EngagementRecord)]
    for start in range(0, len(engagement), batch_size):
        batch_e = engagement[start : start + batch_size]
        unknown = importer.engagement(batch_e)
        if unknown and not skip_invalid:
            raise ImportFailed(unknown)  # leaving the transaction rolls everything back
        importer.report.errors.extend(unknown)
        if progress:
            progress(len(batch_e))


def _template_error(item: Record, require_template: Callable[[str, str, str], None]) -> LineError | None:
    if not isinstance(item, RecipientRecord):
        return None
    for kind, channel, field in required_templates(item):
        try:
            require_template(kind, channel, field)
        except InvalidInput as exc:
            message = f"{shown(exc.value)} is invalid; expected {exc.expected}"
            return LineError(item.line, exc.field, message, shown(exc.value), exc.expected)
    return None


def import_file(factory: SessionFactory, path: Path, now: datetime, **kwargs: Any) -> ImportReport:
    # Bytes, decoded line by line: a bad byte is an error on its line, not a traceback.
    with path.open("rb") as handle:
        return import_lines(factory, handle, now, **kwargs)
