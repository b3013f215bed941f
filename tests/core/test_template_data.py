"""The one check of template data, shared by ad-hoc notifications and digest events."""

from __future__ import annotations

from typing import Any

import pytest

from planner.core.template_data import MAX_BYTES, MAX_DEPTH, check_template_data, nesting_depth
from planner.errors import InvalidInput


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def test_plain_objects_pass_as_they_are() -> None:
    data = {"author": "Bob", "lines": [1, 2.5, None, True], "reply": {"id": "c-1"}}
    assert check_template_data(data) is data
    assert check_template_data(nested(MAX_DEPTH)) == nested(MAX_DEPTH)


PLAIN = "a JSON object of plain values (no NaN, no huge numbers)"


@pytest.mark.parametrize(
    ("data", "shown", "expected"),
    [
        ([1, 2], "[1, 2]", "a JSON object"),
        ("text", "'text'", "a JSON object"),
        (nested(MAX_DEPTH + 1), "'(nested too deeply)'", f"a JSON object nested at most {MAX_DEPTH} deep"),
        ({"n": float("nan")}, "{'n': nan}", PLAIN),
        ({"n": 10**5000}, "<dict too large to show>", PLAIN),
        ({"when": {1, 2}}, "{'when': {1, 2}}", PLAIN),
        ({"text": "x" * MAX_BYTES}, f"'{MAX_BYTES + 12} bytes'", f"at most {MAX_BYTES} bytes of JSON"),
    ],
)
def test_refusals_name_the_field_the_value_and_what_was_expected(
    data: Any, shown: str, expected: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_template_data(data)
    assert str(refused.value) == f"data: {shown} is invalid; expected {expected}"


def test_a_smaller_limit_and_another_field_name() -> None:
    with pytest.raises(InvalidInput, match=r"^event\.data: '31 bytes' is invalid; expected at most 16 bytes"):
        check_template_data({"text": "x" * 19}, "event.data", max_bytes=16)


def test_depth_is_counted_without_recursion() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert nesting_depth(deep) > MAX_DEPTH
    assert nesting_depth(5) == 0 and nesting_depth({}) == 1 and nesting_depth({"a": [{}]}) == 3
