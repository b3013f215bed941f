"""Finding recipients: what an operator types (an id prefix, an address, a number) and the filters.

One parser for the three doors (``GET /v1/recipients``, ``planner recipients list`` and the
dashboard's search box), so a search means the same everywhere. Addresses are matched exactly after
normalising: an email address without regard to case, a phone number in E.164 form whatever the
spaces, dashes, dots or brackets it was typed with ('+1 (212) 555-0100' finds '+12125550100').
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planner.core import validation
from planner.core.localtime import available_zones
from planner.errors import InvalidInput

#: Values of the ``opted_out`` and ``invalid`` filters: a channel, or either of them.
CHANNEL_FILTERS = ("email", "sms", "any")
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
#: Typed text that is a phone number rather than an id: '+' or '00', then digits and separators.
_PHONE_LIKE = re.compile(r"(\+|00)[\d\s().\-/]{6,}")


def normalised_phone(value: str, field: str = "phone") -> str:
    """'+1 (212) 555-0100' or '0044 7700 900123' as E.164 ('+12125550100', '+447700900123')."""
    compact = _PHONE_SEPARATORS.sub("", value.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        return validation.phone(compact, field)
    except InvalidInput:
        expected = "a phone number in international form, e.g. '+1 212 555 0100'"
        raise InvalidInput(field, value, expected) from None


def normalised_email(value: str, field: str = "email") -> str:
    """The address in lower case: addresses are found without regard to case."""
    return validation.email(value.strip(), field).lower()


@dataclass(frozen=True)
class RecipientSearch:
    """What to find; every part given must match (an empty search lists everyone)."""

    id_prefix: str | None = None
    email: str | None = None  # lower case
    phone: str | None = None  # E.164
    zone: str | None = None
    #: Opted out of a channel, or of a kind on it: 'email', 'sms' or 'any'.
    opted_out: str | None = None
    #: With an address marked invalid: 'email', 'sms' or 'any'.
    invalid: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        q: str | None = None,
        id_prefix: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        zone: str | None = None,
        opted_out: str | None = None,
        invalid: str | None = None,
    ) -> RecipientSearch:
        """Validate what was typed; ``q`` is a search box's text: an address with '@', a phone
        number, or else the start of an id (a bad one is reported as ``q``)."""
        typed = cls._typed(q) if q and q.strip() else {}
        return cls(
            id_prefix=_prefix(id_prefix) if id_prefix else typed.get("id_prefix"),
            email=normalised_email(email) if email else typed.get("email"),
            phone=normalised_phone(phone) if phone else typed.get("phone"),
            zone=_zone(zone) if zone else None,
            opted_out=_channel_filter(opted_out, "opted_out") if opted_out else None,
            invalid=_channel_filter(invalid, "invalid") if invalid else None,
        )

    @staticmethod
    def _typed(q: str) -> dict[str, str]:
        text = q.strip()
        if "@" in text:
            return {"email": normalised_email(text, "q")}
        if _PHONE_LIKE.fullmatch(text):
            return {"phone": normalised_phone(text, "q")}
        return {"id_prefix": _prefix(text, "q")}

    @property
    def is_empty(self) -> bool:
        return not any(vars(self).values())


def _prefix(value: str, field: str = "id_prefix") -> str:
    text = value.strip()
    if not text or len(text) > 200 or not re.fullmatch(validation.EXTERNAL_ID_PATTERN, text):
        raise InvalidInput(field, value, "the start of an id: letters, digits and _ . : @ -")
    return text


def _zone(value: str) -> str:
    if value not in available_zones():
        raise InvalidInput("zone", value, "an IANA time zone name such as 'America/New_York'")
    return value


def _channel_filter(value: str, field: str) -> str:
    if value not in CHANNEL_FILTERS:
        raise InvalidInput(field, value, "one of 'email', 'sms', 'any'")
    return value
