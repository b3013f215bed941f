"""Dates, times, numbers and plural forms in the recipient's language and zone: Babel, as Jinja filters.

Templates never format by hand; they write ``{{ data.due_at | localdate("full") }}``,
``{{ scheduled_at | localtime }}``, ``{{ data.amount | currency("EUR") }}``,
``{{ data.count | plural(one="# new comment", other="# new comments") }}``. Each filter formats
for the :class:`Formatting` the renderer puts in the context (:data:`FORMATTING_KEY`): the
recipient's locale (when the templates chosen are in its language, else theirs) and zone, from
CLDR's data through Babel.

What a filter takes:

* ``localdate``: a date, an ISO date ``YYYY-MM-DD``, or an instant (aware datetime, or ISO 8601
  with an offset: its date in the recipient's zone). Format ``short``, ``medium`` (default),
  ``long``, ``full`` or a CLDR pattern (``"EEEE d MMMM"``).
* ``localtime`` and ``localdatetime``: an instant, shown in the recipient's zone (a naive time or
  ``HH:MM`` for ``localtime``: a wall time, shown as is). Default formats ``short`` and ``medium``.
* ``number``, ``percent``, ``currency(code)``: a number, or the text of one (JSON data arrives as
  text now and then: ``"1234.5"``). An optional CLDR pattern.
* ``plural``: a count and its forms by CLDR plural category (``zero``, ``one``, ``two``, ``few``,
  ``many``, ``other``; ``other`` is required); ``#`` in the form is the count, formatted.

A value the filter cannot read is a ``ValueError`` naming the filter and the value: the rendering
fails, as any template error does. A :class:`SampleValue` (``planner templates check``'s invented
data) passes through every filter unformatted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import jinja2
from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from planner.core.locales import lookup_chain
from planner.core.localtime import get_zone

#: The context key the renderer puts the :class:`Formatting` under.
FORMATTING_KEY = "_formatting"
#: CLDR's plural categories, the keyword arguments ``plural`` takes.
PLURAL_FORMS = ("zero", "one", "two", "few", "many", "other")


class SampleValue(str):
    """Text ``planner templates check`` invents for data it cannot know (``<amount>``)."""

    __slots__ = ()


@dataclass(frozen=True)
class Formatting:
    """How one message formats: a Babel locale and an IANA zone."""

    locale: Locale
    zone: str


@functools.lru_cache(maxsize=512)
def babel_locale(tag: str, default: str) -> Locale:
    """The most specific locale Babel has data for along ``tag``'s lookup chain (``de-CH-1996`` ->
    ``de_CH``), else along ``default``'s, else English."""
    for candidate in [*lookup_chain(tag), *lookup_chain(default), "en"]:
        try:
            return Locale.parse(candidate, sep="-")
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    raise AssertionError("Babel has no data for English")  # pragma: no cover - it always has


def formatting(tag: str, zone: str, default: str) -> Formatting:
    return Formatting(babel_locale(tag, default), zone)


def _formatting(context: Any) -> Formatting:
    found = context.get(FORMATTING_KEY)
    if isinstance(found, Formatting):
        return found
    return formatting("en", "UTC", "en")  # a template rendered outside a message (a test)


def _refused(name: str, value: Any, expected: str) -> ValueError:
    shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:60]}..."
    return ValueError(f"{name}: {shown} is not {expected}")


def _instant(name: str, value: Any, zone: str) -> datetime | None:
    """An aware instant in ``zone`` from a datetime or ISO 8601 text with an offset; None if neither."""
    if isinstance(value, str) and "T" in value:
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _refused(name, value, "an ISO 8601 instant such as '2026-03-02T13:00:00Z'") from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _refused(name, value, "an instant with an offset (a naive time is ambiguous)")
        return value.astimezone(get_zone(zone))
    return None


def _number(name: str, value: Any) -> int | float | Decimal:
    if isinstance(value, bool):
        raise _refused(name, value, "a number")
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise _refused(name, value, "a number")


@jinja2.pass_context
def localdate(context: Any, value: Any, format: str = "medium") -> str:
    if isinstance(value, SampleValue):
        return value
    fmt = _formatting(context)
    instant = _instant("localdate", value, fmt.zone)
    if instant is not None:
        value = instant.date()
    elif isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise _refused("localdate", value, "a date YYYY-MM-DD or an instant with an offset") from None
    if not isinstance(value, date):
        raise _refused("localdate", value, "a date or an instant")
    return str(babel_dates.format_date(value, format, locale=fmt.locale))


@jinja2.pass_context
def localtime(context: Any, value: Any, format: str = "short") -> str:
    if isinstance(value, SampleValue):
        return value
    fmt = _formatting(context)
    instant = _instant("localtime", value, fmt.zone)
    if instant is not None:
        return str(babel_dates.format_time(instant, format, tzinfo=instant.tzinfo, locale=fmt.locale))
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value.strip())
        except ValueError:
            raise _refused("localtime", value, "a wall time HH:MM or an instant with an offset") from None
    if not isinstance(value, time):
        raise _refused("localtime", value, "a time or an instant")
    return str(babel_dates.format_time(value, format, locale=fmt.locale))


@jinja2.pass_context
def localdatetime(context: Any, value: Any, format: str = "medium") -> str:
    if isinstance(value, SampleValue):
        return value
    fmt = _formatting(context)
    instant = _instant("localdatetime", value, fmt.zone)
    if instant is None:
        raise _refused("localdatetime", value, "an instant with an offset")
    return str(babel_dates.format_datetime(instant, format, tzinfo=instant.tzinfo, locale=fmt.locale))


@jinja2.pass_context
def number(context: Any, value: Any, format: str | None = None) -> str:
    if isinstance(value, SampleValue):
        return value
    amount = _number("number", value)
    return str(babel_numbers.format_decimal(amount, format, locale=_formatting(context).locale))


@jinja2.pass_context
def percent(context: Any, value: Any, format: str | None = None) -> str:
    if isinstance(value, SampleValue):
        return value
    amount = _number("percent", value)
    return str(babel_numbers.format_percent(amount, format, locale=_formatting(context).locale))


@jinja2.pass_context
def currency(context: Any, value: Any, code: str, format: str | None = None) -> str:
    if isinstance(value, SampleValue):
        return value
    amount = _number("currency", value)
    if not isinstance(code, str) or not babel_numbers.is_currency(code):
        raise _refused("currency", code, "an ISO 4217 currency code such as 'EUR'")
    return str(babel_numbers.format_currency(amount, code, format, locale=_formatting(context).locale))


@jinja2.pass_context
def plural(context: Any, count: Any, **forms: str) -> str:
    unknown = sorted(set(forms) - set(PLURAL_FORMS))
    if unknown or "other" not in forms:
        raise _refused("plural", sorted(forms), f"forms among {', '.join(PLURAL_FORMS)}, 'other' included")
    if isinstance(count, SampleValue):
        return forms["other"].replace("#", count)
    amount = _number("plural", count)
    locale = _formatting(context).locale
    category = locale.plural_form(amount)
    chosen = forms.get(category, forms["other"])
    return chosen.replace("#", str(babel_numbers.format_decimal(amount, locale=locale)))


#: The filters, by the name templates use.
FILTERS: dict[str, Callable[..., Any]] = {
    "localdate": localdate,
    "localtime": localtime,
    "localdatetime": localdatetime,
    "number": number,
    "percent": percent,
    "currency": currency,
    "plural": plural,
}
