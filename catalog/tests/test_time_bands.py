from datetime import UTC, datetime

import pytest

from catalog.time_bands import time_band_of

PEAK = {"peak": ["08:00", "20:00"]}


@pytest.mark.parametrize(
    ("instant", "band"),
    [
        (datetime(2026, 3, 16, 7, 0, tzinfo=UTC), "peak"),  # 08:00 Paris (UTC+1): the start is included
        (datetime(2026, 3, 16, 6, 59, 59, tzinfo=UTC), "off_peak"),  # 07:59:59 Paris
        (datetime(2026, 3, 16, 19, 0, tzinfo=UTC), "off_peak"),  # 20:00 Paris: the end is excluded
        (datetime(2026, 3, 16, 18, 59, tzinfo=UTC), "peak"),  # 19:59 Paris
        (datetime(2026, 7, 16, 6, 0, tzinfo=UTC), "peak"),  # 08:00 Paris in summer time (UTC+2)
        (datetime(2026, 7, 16, 18, 0, tzinfo=UTC), "off_peak"),  # 20:00 Paris in summer time
    ],
)
def test_peak_band_edges_in_paris(instant: datetime, band: str) -> None:
    assert time_band_of(instant, bands=PEAK, tz="Europe/Paris") == band


def test_a_band_can_wrap_past_midnight() -> None:
    night = {"night": ["22:00", "06:00"]}
    assert time_band_of(datetime(2026, 3, 16, 22, 30, tzinfo=UTC), bands=night, tz="UTC") == "night"
    assert time_band_of(datetime(2026, 3, 16, 5, 59, tzinfo=UTC), bands=night, tz="UTC") == "night"
    assert time_band_of(datetime(2026, 3, 16, 6, 0, tzinfo=UTC), bands=night, tz="UTC") == "off_peak"


def test_the_same_instant_falls_in_different_bands_for_different_customers() -> None:
    instant = datetime(2026, 3, 16, 16, 0, tzinfo=UTC)  # 17:00 Paris, 09:00 Los Angeles, 01:00 Tokyo
    assert time_band_of(instant, bands=PEAK, tz="Europe/Paris") == "peak"
    assert time_band_of(instant, bands=PEAK, tz="America/Los_Angeles") == "peak"
    assert time_band_of(instant, bands=PEAK, tz="Asia/Tokyo") == "off_peak"
