"""Time bands of a meter (``{"peak": ["08:00", "20:00"]}``), evaluated in the customer's time zone.

A band includes its start and excludes its end, so 08:00 is peak and 20:00 is off-peak. A band
whose end is before its start wraps past midnight (``["22:00", "06:00"]``). Any time outside every
band is ``off_peak``.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

OFF_PEAK = "off_peak"


def _parse(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def time_band_of(instant: datetime, *, bands: Mapping[str, Sequence[str]], tz: str) -> str:
    """The band of an aware instant in the customer's local time: 2026-03-16T07:00Z is 08:00 in
    Paris (winter time), hence "peak" for ``{"peak": ["08:00", "20:00"]}``."""
    local = instant.astimezone(ZoneInfo(tz)).time()
    for name, (start_text, end_text) in bands.items():
        start, end = _parse(start_text), _parse(end_text)
        inside = start <= local < end if start < end else (local >= start or local < end)
        if inside:
            return name
    return OFF_PEAK
