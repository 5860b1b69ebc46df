"""The API's orjson renderer writes the bytes DRF's JSONRenderer writes."""

import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from billing_platform.api.renderers import OrjsonRenderer

PARIS = ZoneInfo("Europe/Paris")

PAYLOADS: list[Any] = [
    {},
    [],
    {"a": None, "b": True, "c": False, "d": 0, "e": -17, "f": 2**63 - 1, "g": ""},
    {"amount": Decimal("12.34"), "rate": Decimal("0.2"), "zero": Decimal("0"), "big": Decimal("123456789.123456")},
    {"tiny": Decimal("0.00001"), "negative": Decimal("-0.5"), "huge": Decimal("1E+20")},
    {
        "utc": datetime(2026, 12, 7, 15, 30, tzinfo=UTC),
        "micro": datetime(2026, 12, 7, 15, 30, 1, 123456, tzinfo=UTC),
        "paris": datetime(2026, 7, 1, 0, 0, tzinfo=PARIS),
        "naive": datetime(2026, 1, 2, 3, 4, 5),  # noqa: DTZ001  # DRF writes it without an offset
        "date": date(2026, 2, 28),
        "time": time(9, 30),
        "duration": timedelta(days=1, seconds=3),
    },
    {"id": uuid.UUID("3f2c1a6e-8b9d-4c7e-a1f0-123456789abc"), "ids": [uuid.UUID(int=1), uuid.UUID(int=2)]},
    {"text": "Ölçüm — «prix» 10 € ✓ 漢字 😀", "escapes": 'quote " backslash \\ slash / tab \t newline \n nul \x00'},
    {"separators": "line\u2028paragraph\u2029end", "control": "\x01\x1f\x7f"},
    {"nested": [{"lines": [{"amount": Decimal("1.00"), "at": datetime(2026, 1, 1, tzinfo=UTC)}]}, [[], [{}]]]},
    {"tuple": (1, "two", Decimal("3.5")), "lazy": gettext_lazy("Invoice"), 1: "int key", None: "none key"},
    OrderedDict([("z", 1), ("a", 2)]),
    ReturnDict(
        {"id": "x", "devices": ReturnList([{"device_id": "d-1"}], serializer=None)},  # type: ignore[call-overload]
        serializer=None,
    ),
    {"floats": [0.1, 1.0, 100.0, 1e16, 1e22, -0.0, 123456.789]},
    {"small floats": [1e-7, 2.5e-5, 0.0001]},
    {"looks like a float": "pack 1e-5 of 0.00001"},
    {"big int": 2**70},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_orjson_renderer_writes_the_bytes_of_drfs_json_renderer(payload: Any) -> None:
    expected = JSONRenderer().render(payload, "application/json")
    assert OrjsonRenderer().render(payload, "application/json") == expected


def test_the_renderer_writes_a_representative_response_exactly() -> None:
    payload = {
        "id": uuid.UUID("3f2c1a6e-8b9d-4c7e-a1f0-123456789abc"),
        "amount": "1234.50",
        "name": "Société Générale",
        "at": datetime(2026, 12, 7, 15, 30, 0, 500000, tzinfo=UTC),
        "on": date(2026, 12, 1),
        "rate": Decimal("0.25"),
        "lines": [1, None, "\u2028"],
    }
    assert OrjsonRenderer().render(payload, "application/json") == (
        b'{"id":"3f2c1a6e-8b9d-4c7e-a1f0-123456789abc","amount":"1234.50",'
        b'"name":"Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale","at":"2026-12-07T15:30:00.500000Z",'
        b'"on":"2026-12-01","rate":0.25,"lines":[1,null,"\\u2028"]}'
    )


def test_an_indent_asked_for_is_drfs_pretty_printing() -> None:
    payload = {"a": [1, 2], "b": {"c": Decimal("1.5")}}
    media = "application/json; indent=4"
    assert OrjsonRenderer().render(payload, media) == JSONRenderer().render(payload, media)
    assert OrjsonRenderer().render(payload, media).count(b"\n") == 8


def test_uuids_amounts_and_dates_are_written_by_orjson_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("the standard renderer was used")

    payload = {
        "id": uuid.UUID("cd21970e-8254-4a6d-8f92-81ec5200e1e0"),
        "ids": [str(uuid.UUID(int=n * 0x10E_0000_0000_0000_0000)) for n in range(1, 20)],
        "amount": "0.00001",
        "rate": Decimal("0.2"),
        "at": datetime(2026, 12, 7, 15, 30, tzinfo=UTC),
        "text": "pack of 1e-5 units, 0.00001 each",
    }
    expected = JSONRenderer().render(payload)
    monkeypatch.setattr(JSONRenderer, "render", refuse)
    assert OrjsonRenderer().render(payload) == expected


def test_nothing_renders_as_no_body() -> None:
    assert OrjsonRenderer().render(None) == b""


def test_what_json_cannot_write_fails_the_same_way() -> None:
    with pytest.raises(TypeError):
        JSONRenderer().render({"x": object()})
    with pytest.raises(TypeError):
        OrjsonRenderer().render({"x": object()})
    with pytest.raises(ValueError, match="timezone-aware"):
        OrjsonRenderer().render({"t": time(9, 30, tzinfo=UTC)})


def test_the_api_renders_with_orjson() -> None:
    assert settings.REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] == ["billing_platform.api.renderers.OrjsonRenderer"]
