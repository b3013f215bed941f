"""The planner reads caps in ``limits``' notation without importing it: both must agree on every form."""

from __future__ import annotations

import pytest
from limits import parse

from planner.core.limit_notation import parse_limit

FORMS = [
    "10/day",
    "10 / day",
    "1 per second",
    "5 per 2 hours",
    "100/Hour",
    "7 PER DAYS",
    "2/month",
    "1/year",
    "1/second;5/minute",
    "4 per 3 days, 10/month",
    " 12/minute ",
]
BAD = [
    "",
    "day",
    "10",
    "10/fortnight",
    "ten/day",
    "10 each day",
    "10/day;",
    "-1/day",
    "10/days/",
    "/day",
    "3/2/minutes",
    "1/dayss",
]


@pytest.mark.parametrize("text", FORMS)
def test_the_same_amount_and_window_as_limits(text: str) -> None:
    item = parse(text)
    assert parse_limit(text) == (item.amount, item.get_expiry())


@pytest.mark.parametrize("text", BAD)
def test_what_limits_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)
    with pytest.raises(ValueError):
        parse_limit(text)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_limit(10)
