from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_platform.periods import (
    Period,
    active_days,
    billing_date_on_or_before,
    clamp_day,
    days_in,
    local_date,
    monthly_period_containing,
    monthly_period_starting,
    next_billing_date,
    proration_fraction,
)

PARIS = "Europe/Paris"


def test_billing_day_31_falls_on_28_february_and_30_april_and_comes_back_to_31() -> None:
    # pitfalls #3: the billing day is kept; the clamped day never replaces it (31 -> 28 -> 31 -> 30)
    dates = [date(2026, 1, 31)]
    for _ in range(4):
        dates.append(next_billing_date(dates[-1], 31))
    assert dates == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]


def test_billing_day_29_in_a_leap_year() -> None:
    assert clamp_day(2028, 2, 29) == date(2028, 2, 29)
    assert clamp_day(2027, 2, 29) == date(2027, 2, 28)
    assert next_billing_date(date(2028, 1, 29), 29) == date(2028, 2, 29)
    assert next_billing_date(date(2028, 2, 29), 29) == date(2028, 3, 29)


def test_billing_date_on_or_before() -> None:
    assert billing_date_on_or_before(date(2026, 3, 10), 1) == date(2026, 3, 1)
    assert billing_date_on_or_before(date(2026, 3, 10), 15) == date(2026, 2, 15)
    assert billing_date_on_or_before(date(2026, 3, 1), 31) == date(2026, 2, 28)
    with pytest.raises(ValueError, match="billing day must be between 1 and 31"):
        billing_date_on_or_before(date(2026, 3, 1), 32)


def test_period_is_half_open_at_local_midnight() -> None:
    march = monthly_period_starting(date(2026, 3, 1), billing_day=1, tz=PARIS)
    # Paris is UTC+1 on 1 March and UTC+2 (summer time) on 1 April
    assert march.start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert march.end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert march.start in march
    assert march.end not in march


def test_event_at_22_30_utc_on_31_march_is_april_in_paris() -> None:
    instant = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    assert local_date(instant, PARIS) == date(2026, 4, 1)
    period = monthly_period_containing(instant, billing_day=1, tz=PARIS)
    assert period == monthly_period_starting(date(2026, 4, 1), billing_day=1, tz=PARIS)
    assert monthly_period_containing(instant, billing_day=1, tz="UTC").start == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "start", "days"),
    [
        ("Europe/Paris", date(2026, 3, 1), 31),  # spring forward on 29 March: 743 hours, still 31 days
        ("Europe/Paris", date(2026, 10, 1), 31),  # fall back on 25 October
        ("America/Los_Angeles", date(2026, 3, 1), 31),  # 8 March
        ("America/Los_Angeles", date(2026, 11, 1), 30),  # 1 November
    ],
)
def test_a_dst_change_inside_a_period_does_not_shift_day_counts(tz: str, start: date, days: int) -> None:
    period = monthly_period_starting(start, billing_day=1, tz=tz)
    assert days_in(period, tz) == days
    assert (period.end - period.start).total_seconds() != days * 86400  # the period really has a DST change
    # activation on the 15th at 09:00 local: 15..end of month, activation day included
    activated = datetime(start.year, start.month, 15, 9, 0, tzinfo=ZoneInfo(tz))
    assert active_days(period, active_from=activated, active_until=None, tz=tz) == days - 14


def test_smart_fleet_activation_prorations() -> None:
    march = monthly_period_starting(date(2026, 3, 1), billing_day=1, tz=PARIS)
    april = monthly_period_starting(date(2026, 4, 1), billing_day=1, tz=PARIS)
    a = datetime(2026, 3, 15, 8, 0, tzinfo=UTC)  # 09:00 Paris
    b = datetime(2026, 3, 20, 13, 0, tzinfo=UTC)  # 14:00 Paris
    c = datetime(2026, 4, 10, 6, 0, tzinfo=UTC)  # 08:00 Paris (summer time)
    fee = Decimal("25.00")
    # 25.00 x 17/31 = 13.709... -> 13.71 ; 25.00 x 12/31 = 9.677... -> 9.68 ; 25.00 x 21/30 = 17.50
    assert proration_fraction(march, active_from=a, active_until=None, tz=PARIS) == Decimal(17) / Decimal(31)
    assert (fee * proration_fraction(march, active_from=b, active_until=None, tz=PARIS)).quantize(
        Decimal("0.01")
    ) == Decimal("9.68")
    assert proration_fraction(april, active_from=c, active_until=None, tz=PARIS) == Decimal(21) / Decimal(30)


def test_deactivation_day_does_not_count() -> None:
    march = monthly_period_starting(date(2026, 3, 1), billing_day=1, tz=PARIS)
    on = datetime(2026, 3, 10, 12, tzinfo=UTC)
    off = datetime(2026, 3, 12, 12, tzinfo=UTC)
    assert active_days(march, active_from=on, active_until=off, tz=PARIS) == 2  # 10 and 11 March


def test_period_refuses_naive_or_empty_bounds() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Period(datetime(2026, 1, 1), datetime(2026, 2, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="end must be after"):
        Period(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


@given(
    billing_day=st.integers(1, 31),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    offset_hours=st.integers(0, 24 * 40),
    tz=st.sampled_from(["Europe/Paris", "America/Los_Angeles", "Asia/Tokyo", "UTC"]),
)
def test_proration_fraction_is_between_0_and_1(billing_day: int, start: date, offset_hours: int, tz: str) -> None:
    first = billing_date_on_or_before(start, billing_day)
    period = monthly_period_starting(first, billing_day=billing_day, tz=tz)
    activated = datetime.fromtimestamp(period.start.timestamp() + offset_hours * 3600 - 5 * 86400, tz=UTC)
    fraction = proration_fraction(period, active_from=activated, active_until=None, tz=tz)
    assert Decimal(0) <= fraction <= Decimal(1)
    assert 28 <= days_in(period, tz) <= 31
