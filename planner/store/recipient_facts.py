"""What the rules read of recipients, loaded from their rows: the one row -> RecipientState mapping.

The planner's chunks, ad-hoc notify, the worker's re-check, ``explain`` and ``simulate`` all load
recipients through :func:`recipient_states` (or :func:`recipient_state` on a row they selected with
:data:`RECIPIENT_COLUMNS`), so they see the same facts the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Text, case, cast, select
from sqlalchemy.orm import Session

from planner.core.engagement_slots import EngagementSlots
from planner.core.quiet_hours import QuietHours
from planner.core.recipient import RecipientState, kinds_opted_out
from planner.errors import NotFound
from planner.store.dialect import Dialect, one_of
from planner.store.tables import RECIPIENTS

#: What the rules read of each recipient, in the order :func:`recipient_state` unpacks it.
RECIPIENT_COLUMNS = (
    "id",
    "external_id",
    "timezone",
    "email",
    "phone",
    "email_quiet_start",
    "email_quiet_end",
    "sms_quiet_start",
    "sms_quiet_end",
    "email_invalid",
    "sms_invalid",
    "email_opt_out",
    "sms_opt_out",
    "opt_outs",
)
_NO_OPT_OUTS: frozenset[str] = frozenset()
_NOTHING: Mapping[str, Any] = MappingProxyType({})
#: What a recipient without kind opt-outs (nearly all) shares; never mutated.
_NO_KIND_OPT_OUTS: Mapping[str, frozenset[str]] = MappingProxyType({"email": frozenset(), "sms": frozenset()})


def recipient_state(row: Sequence[Any]) -> RecipientState:
    """A recipient row (the columns of ``RECIPIENT_COLUMNS``, in order, perhaps followed by others)
    as the rules see it. Unpacked by position: a chunk builds a thousand of them."""
    (
        recipient_id,
        external_id,
        timezone,
        email,
        phone,
        email_quiet_start,
        email_quiet_end,
        sms_quiet_start,
        sms_quiet_end,
        email_invalid,
        sms_invalid,
        email_opt_out,
        sms_opt_out,
        opt_outs,
    ) = row[: len(RECIPIENT_COLUMNS)]
    email_qh = QuietHours.of_columns(email_quiet_start, email_quiet_end)
    sms_qh = QuietHours.of_columns(sms_quiet_start, sms_quiet_end)
    quiet: Mapping[str, QuietHours] = _NOTHING
    if email_qh or sms_qh:
        quiet = {c: qh for c, qh in (("email", email_qh), ("sms", sms_qh)) if qh}
    invalid: Mapping[str, str] = _NOTHING
    if email_invalid or sms_invalid:
        invalid = {c: why for c, why in (("email", email_invalid), ("sms", sms_invalid)) if why}
    opted_out = _NO_OPT_OUTS
    if email_opt_out or sms_opt_out:
        opted_out = frozenset(c for c, flag in (("email", email_opt_out), ("sms", sms_opt_out)) if flag)
    kinds = {c: kinds_opted_out(opt_outs, c) for c in ("email", "sms")} if opt_outs else _NO_KIND_OPT_OUTS
    return RecipientState(recipient_id, external_id, timezone, email, phone, quiet, opted_out, invalid, kinds)


# The stored text is one JSON value written by the database: decoded without json.loads' checks
# for whitespace around it (read for every learned recipient of a run).
_json_value = json.JSONDecoder().raw_decode


def recipient_states(
    session: Session, recipient_ids: Sequence[int], dialect: Dialect, with_slots: Sequence[int] = ()
) -> tuple[dict[int, RecipientState], dict[int, EngagementSlots]]:
    """The recipients of ``recipient_ids`` by id, in one statement; and the engagement statistic
    (:mod:`planner.core.engagement_slots`) of those among ``with_slots`` (the ones with a learned
    send time), read by the same statement only when some are asked for."""
    columns: list[ColumnElement[Any]] = [RECIPIENTS.c[name] for name in RECIPIENT_COLUMNS]
    if with_slots:
        # As text, and only for the recipients with a learned time in the chunk: only theirs is parsed.
        learned = one_of(RECIPIENTS.c.id, with_slots, dialect)
        columns.append(case((learned, cast(RECIPIENTS.c.engagement_slots, Text))))
    rows = session.execute(select(*columns).where(one_of(RECIPIENTS.c.id, recipient_ids, dialect))).all()
    states = {row[0]: recipient_state(row) for row in rows}
    if not with_slots:
        return states, {}
    wanted = set(with_slots)
    return states, {
        row[0]: EngagementSlots.from_json(None if row[-1] is None else _json_value(row[-1])[0])
        for row in rows
        if row[0] in wanted
    }


def recipient_state_by_external_id(session: Session, external_id: str) -> RecipientState:
    """One recipient by its external id; ``NotFound`` when there is none."""
    stmt = select(*(RECIPIENTS.c[name] for name in RECIPIENT_COLUMNS)).where(
        RECIPIENTS.c.external_id == external_id
    )
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound("recipient", external_id)
    return recipient_state(row)
