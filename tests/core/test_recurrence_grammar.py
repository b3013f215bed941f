"""The RRULE grammar, read strictly: every refusal names the field, echoes the value and says
exactly what was expected; the neighbours of each refused value are accepted."""

from __future__ import annotations

from datetime import date

import pytest

from planner.core.recurrence import RecurrenceRule
from planner.errors import InvalidInput

START = date(2026, 3, 1)  # a Sunday
BYDAY = "BYDAY weekdays MO to SU, each optionally after an ordinal 1 to 53 or -53 to -1, each once"
BYMONTHDAY = "BYMONTHDAY days of the month 1 to 31 or -31 to -1, comma-separated, each once"
BYMONTH = "BYMONTH months 1 to 12, comma-separated, each once"
BYSETPOS = "BYSETPOS positions 1 to 366 or -366 to -1, comma-separated, each once"
UNTIL = "UNTIL a date YYYYMMDD or a date-time YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ (RFC 5545)"
GENERIC = (
    "an RRULE such as 'FREQ=MONTHLY;BYDAY=-1FR' (FREQ DAILY, WEEKLY, MONTHLY or YEARLY; INTERVAL, BYDAY, "
    "BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL, WKST)"
)
PARTS = "only the parts FREQ, INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL, WKST"
WEEKLY_ORDINAL = (
    "BYDAY without ordinals with FREQ={} (RFC 5545: ordinals such as 2MO only with MONTHLY or YEARLY)"
)
MIXED = "BYDAY weekdays all with ordinals (1MO,-1FR) or all without (MO,FR), not a mix"
IN_A_MONTH = "BYDAY ordinals 1 to 5 or -5 to -1 with {} (a month has at most five of a weekday)"

REFUSED = [
    # BYDAY ordinals: RFC 5545's 1 to 53, ASCII digits, only with MONTHLY or YEARLY, 5 at most in a month
    ("FREQ=MONTHLY;BYDAY=99MO", f"{BYDAY}; got '99MO'"),
    ("FREQ=MONTHLY;BYDAY=0MO", f"{BYDAY}; got '0MO'"),
    ("FREQ=MONTHLY;BYDAY=-0MO", f"{BYDAY}; got '-0MO'"),
    ("FREQ=YEARLY;BYDAY=54MO", f"{BYDAY}; got '54MO'"),
    ("FREQ=YEARLY;BYDAY=-54MO", f"{BYDAY}; got '-54MO'"),
    ("FREQ=YEARLY;BYDAY=100MO", f"{BYDAY}; got '100MO'"),
    ("FREQ=MONTHLY;BYDAY=²MO", f"{BYDAY}; got '²MO'"),
    ("FREQ=MONTHLY;BYDAY=1XX", f"{BYDAY}; got '1XX'"),
    ("FREQ=MONTHLY;BYDAY=MO,,TU", f"{BYDAY}; got ''"),
    ("FREQ=MONTHLY;BYDAY=MO,MO", f"{BYDAY}; got 'MO'"),
    ("FREQ=MONTHLY;BYDAY=6MO", IN_A_MONTH.format("FREQ=MONTHLY") + "; got '6MO'"),
    ("FREQ=MONTHLY;BYDAY=-6MO", IN_A_MONTH.format("FREQ=MONTHLY") + "; got '-6MO'"),
    ("FREQ=MONTHLY;BYDAY=53MO", IN_A_MONTH.format("FREQ=MONTHLY") + "; got '53MO'"),
    ("FREQ=YEARLY;BYMONTH=2;BYDAY=6MO", IN_A_MONTH.format("FREQ=YEARLY and BYMONTH") + "; got '6MO'"),
    ("FREQ=WEEKLY;BYDAY=1MO", WEEKLY_ORDINAL.format("WEEKLY") + "; got '1MO'"),
    ("FREQ=DAILY;BYDAY=MO,-1FR", WEEKLY_ORDINAL.format("DAILY") + "; got '-1FR'"),
    ("FREQ=MONTHLY;BYDAY=MO,2TU", MIXED),
    # COUNT and INTERVAL: ASCII whole numbers in range
    ("FREQ=DAILY;COUNT=³", "COUNT a whole number from 1 to 1000; got '³'"),
    ("FREQ=DAILY;COUNT=0", "COUNT a whole number from 1 to 1000; got '0'"),
    ("FREQ=DAILY;COUNT=1001", "COUNT a whole number from 1 to 1000; got '1001'"),
    ("FREQ=DAILY;COUNT=-1", "COUNT a whole number from 1 to 1000; got '-1'"),
    ("FREQ=DAILY;COUNT=+1", "COUNT a whole number from 1 to 1000; got '+1'"),
    ("FREQ=DAILY;COUNT=1.5", "COUNT a whole number from 1 to 1000; got '1.5'"),
    (
        "FREQ=DAILY;COUNT=" + "9" * 400,
        "COUNT a whole number from 1 to 1000; got '" + "9" * 40 + "'... (400 characters)",
    ),
    ("FREQ=DAILY;INTERVAL=٢", "INTERVAL a whole number from 1 to 1000; got '٢'"),
    ("FREQ=DAILY;INTERVAL=0", "INTERVAL a whole number from 1 to 1000; got '0'"),
    ("FREQ=DAILY;INTERVAL=1001", "INTERVAL a whole number from 1 to 1000; got '1001'"),
    # UNTIL: a DATE or an RFC 5545 DATE-TIME with valid ranges; never dropped
    ("FREQ=DAILY;UNTIL=garbage", f"{UNTIL}; got 'garbage'"),
    ("FREQ=DAILY;UNTIL=20270101T000000+0200", f"{UNTIL}; got '20270101T000000+0200'"),
    ("FREQ=DAILY;UNTIL=20270101T999999Z", f"{UNTIL}; got '20270101T999999Z'"),
    ("FREQ=DAILY;UNTIL=20270101T240000Z", f"{UNTIL}; got '20270101T240000Z'"),
    ("FREQ=DAILY;UNTIL=20270101T236000", f"{UNTIL}; got '20270101T236000'"),
    ("FREQ=DAILY;UNTIL=20270101T235961Z", f"{UNTIL}; got '20270101T235961Z'"),
    ("FREQ=DAILY;UNTIL=20270230", f"{UNTIL}; got '20270230'"),
    ("FREQ=DAILY;UNTIL=20271301", f"{UNTIL}; got '20271301'"),
    ("FREQ=DAILY;UNTIL=2027-01-01", f"{UNTIL}; got '2027-01-01'"),
    ("FREQ=DAILY;UNTIL=20270101Z", f"{UNTIL}; got '20270101Z'"),
    ("FREQ=DAILY;UNTIL=20270101T0000", f"{UNTIL}; got '20270101T0000'"),
    ("FREQ=DAILY;UNTIL=２0270101", f"{UNTIL}; got '２0270101'"),
    # BYMONTHDAY, BYMONTH, BYSETPOS ranges
    ("FREQ=MONTHLY;BYMONTHDAY=0", f"{BYMONTHDAY}; got '0'"),
    ("FREQ=MONTHLY;BYMONTHDAY=32", f"{BYMONTHDAY}; got '32'"),
    ("FREQ=MONTHLY;BYMONTHDAY=-32", f"{BYMONTHDAY}; got '-32'"),
    ("FREQ=MONTHLY;BYMONTHDAY=1,1", f"{BYMONTHDAY}; got '1'"),
    ("FREQ=YEARLY;BYMONTH=0", f"{BYMONTH}; got '0'"),
    ("FREQ=YEARLY;BYMONTH=13", f"{BYMONTH}; got '13'"),
    ("FREQ=YEARLY;BYMONTH=-1", f"{BYMONTH}; got '-1'"),
    ("FREQ=YEARLY;BYMONTH=+1", f"{BYMONTH}; got '+1'"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0", f"{BYSETPOS}; got '0'"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=367", f"{BYSETPOS}; got '367'"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-367", f"{BYSETPOS}; got '-367'"),
    ("FREQ=WEEKLY;BYMONTHDAY=1", "no BYMONTHDAY with FREQ=WEEKLY (RFC 5545)"),
    ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS only together with BYDAY, BYMONTHDAY or BYMONTH (RFC 5545)"),
    ("FREQ=WEEKLY;WKST=XX;BYDAY=MO", "WKST one of MO, TU, WE, TH, FR, SA, SU; got 'XX'"),
    # the parts themselves: each once, none empty, none unknown, FREQ first among equals
    ("FREQ=DAILY;FREQ=WEEKLY", "each part at most once (RFC 5545); FREQ is repeated"),
    ("FREQ=DAILY;INTERVAL=2;INTERVAL=3", "each part at most once (RFC 5545); INTERVAL is repeated"),
    ("FREQ=DAILY;UNTIL=20270101;until=20280101", "each part at most once (RFC 5545); UNTIL is repeated"),
    ("FREQ=DAILY;COUNT=", "a value for COUNT"),
    ("FREQ=DAILY;", "parts separated by single ';', with none empty (no ';' at the end)"),
    ("FREQ=DAILY;;COUNT=2", "parts separated by single ';', with none empty (no ';' at the end)"),
    ("FREQ=DAILY;FOO=1", f"{PARTS}; got 'FOO'"),
    ("FREQ=DAILY;X-NAME=1", f"{PARTS}; got 'X-NAME'"),
    ("FREQ=DAILY;RSCALE=GREGORIAN", f"{PARTS}; got 'RSCALE'"),
    ("FREQ=DAILY;COUNT", f"{GENERIC}; got 'COUNT'"),
    ("FREQ=DAILY;BYHOUR=8", f"no BYHOUR ({GENERIC}; times of day go in 'at')"),
    ("FREQ=YEARLY;BYWEEKNO=20", f"no BYWEEKNO ({GENERIC}; the anchor is start_date)"),
    ("DTSTART=20260101;FREQ=DAILY", f"no DTSTART ({GENERIC}; the anchor is start_date)"),
    ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "COUNT or UNTIL, not both (RFC 5545)"),
    ("FREQ=HOURLY", "FREQ of DAILY, WEEKLY, MONTHLY or YEARLY (times of day go in 'at')"),
    ("FREQ=FORTNIGHTLY", GENERIC),
    ("FREQ=DAıLY", GENERIC),  # 'ı'.upper() is 'I': only ASCII letters are case-folded
    ("INTERVAL=2", GENERIC),
    ("not a rule", f"{GENERIC}; got 'not a rule'"),
    ("ＦＲＥＱ=DAILY", f"{GENERIC}; got 'ＦＲＥＱ=DAILY'"),
]


@pytest.mark.parametrize(("rule", "expected"), REFUSED)
def test_a_refused_rule_names_the_field_the_value_and_what_was_expected(rule: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        RecurrenceRule.parse(rule, START)
    assert (caught.value.field, caught.value.value, caught.value.expected) == ("rrule", rule, expected)
    assert "\n" not in str(caught.value)


def test_the_error_is_one_line_in_the_house_style() -> None:
    with pytest.raises(InvalidInput) as caught:
        RecurrenceRule.parse("FREQ=MONTHLY;BYDAY=99MO", START)
    assert str(caught.value) == f"rrule: 'FREQ=MONTHLY;BYDAY=99MO' is invalid; expected {BYDAY}; got '99MO'"


@pytest.mark.parametrize("value", [None, 5, ["FREQ=DAILY"], "", "   ", "FREQ=DAILY;" + "COUNT=1;" * 70])
def test_what_is_not_a_rule_at_all_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        RecurrenceRule.parse(value, START)
    assert (caught.value.field, caught.value.value, caught.value.expected) == ("rrule", value, GENERIC)


ACCEPTED = [
    # the neighbours of the refused values above, and how each is written back
    ("FREQ=MONTHLY;BYDAY=5MO", "FREQ=MONTHLY;BYDAY=5MO"),
    ("FREQ=MONTHLY;BYDAY=-5MO", "FREQ=MONTHLY;BYDAY=-5MO"),
    ("FREQ=MONTHLY;BYDAY=+1MO,+2TU", "FREQ=MONTHLY;BYDAY=1MO,2TU"),
    ("FREQ=MONTHLY;BYDAY=01MO", "FREQ=MONTHLY;BYDAY=1MO"),
    ("FREQ=YEARLY;BYDAY=53MO", "FREQ=YEARLY;BYDAY=53MO"),
    ("FREQ=YEARLY;BYDAY=-53SU", "FREQ=YEARLY;BYDAY=-53SU"),
    ("FREQ=YEARLY;BYDAY=20MO", "FREQ=YEARLY;BYDAY=20MO"),
    ("FREQ=YEARLY;BYMONTH=2;BYDAY=5MO", "FREQ=YEARLY;BYMONTH=2;BYDAY=5MO"),
    ("FREQ=WEEKLY;BYDAY=MO,TU", "FREQ=WEEKLY;BYDAY=MO,TU"),
    ("FREQ=DAILY;COUNT=1", "FREQ=DAILY;COUNT=1"),
    ("FREQ=DAILY;COUNT=1000", "FREQ=DAILY;COUNT=1000"),
    ("FREQ=DAILY;COUNT=0003", "FREQ=DAILY;COUNT=3"),
    ("FREQ=DAILY;INTERVAL=1000", "FREQ=DAILY;INTERVAL=1000"),
    ("FREQ=DAILY;INTERVAL=02", "FREQ=DAILY;INTERVAL=2"),
    ("FREQ=DAILY;INTERVAL=1", "FREQ=DAILY;INTERVAL=1"),
    ("FREQ=DAILY;UNTIL=20270101", "FREQ=DAILY;UNTIL=20270101"),
    ("FREQ=DAILY;UNTIL=20270101T000000", "FREQ=DAILY;UNTIL=20270101"),
    ("FREQ=DAILY;UNTIL=20270101T235959Z", "FREQ=DAILY;UNTIL=20270101"),
    ("FREQ=DAILY;UNTIL=20261231T235960Z", "FREQ=DAILY;UNTIL=20261231"),
    ("FREQ=DAILY;UNTIL=20280229t120000z", "FREQ=DAILY;UNTIL=20280229"),
    ("FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=MONTHLY;BYMONTHDAY=31"),
    ("FREQ=MONTHLY;BYMONTHDAY=-31,+1", "FREQ=MONTHLY;BYMONTHDAY=-31,1"),
    ("FREQ=YEARLY;BYMONTH=12,01", "FREQ=YEARLY;BYMONTH=12,1"),
    ("FREQ=YEARLY;BYDAY=MO;BYSETPOS=-366,1", "FREQ=YEARLY;BYDAY=MO;BYSETPOS=-366,1"),
    ("FREQ=MONTHLY;BYMONTH=1;BYSETPOS=-1", "FREQ=MONTHLY;BYMONTH=1;BYSETPOS=-1"),
    ("FREQ=WEEKLY;WKST=SU;BYDAY=MO", "FREQ=WEEKLY;WKST=SU;BYDAY=MO"),
    ("rrule:freq=monthly;byday=-1fr;wkst=su", "FREQ=MONTHLY;BYDAY=-1FR;WKST=SU"),
    ("  BYDAY=MO;FREQ=WEEKLY  ", "BYDAY=MO;FREQ=WEEKLY"),
]


@pytest.mark.parametrize(("rule", "normalised"), ACCEPTED)
def test_an_accepted_rule_is_written_back_in_one_normal_form(rule: str, normalised: str) -> None:
    parsed = RecurrenceRule.parse(rule, START)
    assert parsed.text == normalised
    again = RecurrenceRule.parse(parsed.text, START)  # what the store keeps parses to the same rule
    assert again == parsed
    assert again.dates_between(START, date(2027, 3, 1)) == parsed.dates_between(START, date(2027, 3, 1))


def test_a_date_time_until_counts_by_its_date_and_keeps_it() -> None:
    """Rules are expanded on local dates before a zone is known: the date as written is the last."""
    for until in ("20260305", "20260305T000000", "20260305T000000Z", "20260305T235959Z"):
        rule = RecurrenceRule.parse(f"FREQ=DAILY;UNTIL={until}", START)
        assert rule.until == date(2026, 3, 5)
        assert rule.dates_between(START, date(2026, 12, 31))[-1] == date(2026, 3, 5)
        assert rule.first_on_or_after(date(2026, 3, 6)) is None
