"""JSON read with one nesting limit everywhere (settings.TRIPOD["JSON_MAX_DEPTH"])."""

from typing import Any

import pytest

from billing_platform.json_input import JsonTooDeep, json_depth_exceeds, json_load


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for i in range(levels):
        value = {"n": value} if i % 2 else [value]
    return value


@pytest.mark.parametrize(("value", "levels"), [("leaf", 0), ({}, 1), ({"a": [1]}, 2), (nested(32), 32)])
def test_depth_counts_the_containers(value: Any, levels: int) -> None:
    assert json_depth_exceeds(value, levels) is False
    assert json_depth_exceeds(value, levels - 1) is (levels > 0)


def test_json_nested_past_the_limit_or_past_the_decoder_is_too_deep() -> None:
    assert json_load('{"a": [[1]]}') == {"a": [[1]]}
    with pytest.raises(JsonTooDeep, match=r"^JSON nested deeper than 2 levels is not accepted\.$"):
        json_load('{"a": [[1]]}', max_depth=2)
    # deeper than Python's decoder can recurse: the same answer, not a RecursionError
    with pytest.raises(JsonTooDeep) as exc:
        json_load("[" * 100_000 + "]" * 100_000)
    assert (exc.value.status, exc.value.code) == (400, "json_too_deep")
    with pytest.raises(ValueError, match="^Expecting property name"):
        json_load("{not json")
