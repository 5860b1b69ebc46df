"""Recognition schedules, and revrec.md's Smart Fleet worked example from allocation to March revenue.

Pure functions, no database. Amounts are compared as strings so the currency exponent is checked.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revrec.allocation import SspLine, device_shares, transaction_price_allocate
from revrec.schedules import (
    Recognition,
    committed_term_end,
    local_day,
    point_in_time_schedule,
    ratable_schedule,
    recognized_in,
    recognized_to_date,
    usage_schedule,
)

PARIS = "Europe/Paris"
MARCH = date(2026, 3, 1)


def amounts(schedule: list[Recognition]) -> list[tuple[str, str]]:
    return [(line.month.isoformat(), str(line.amount)) for line in schedule]


def test_smart_fleet_march_revenue() -> None:
    """revrec.md's worked example: allocation, per-device shares and March 2026 revenue 531.82."""
    # Fixed consideration 3 × 240.00 + 3 × 12 × 25.00 = 720.00 + 900.00 = 1,620.00; SSP 900 / 1,080.
    hardware, service = transaction_price_allocate(
        transaction_price=Decimal("1620.00"),
        lines=[
            SspLine(ssp=Decimal("300.00"), quantity=Decimal(3)),
            SspLine(ssp=Decimal("30.00"), quantity=Decimal(3), periods=12),
        ],
        currency="EUR",
    )
    assert (str(hardware), str(service)) == ("736.36", "883.64")
    hw_a, hw_b, hw_c = device_shares(hardware, devices=3, currency="EUR")
    sv_a, sv_b, sv_c = device_shares(service, devices=3, currency="EUR")
    assert [str(x) for x in (hw_a, hw_b, hw_c)] == ["245.45", "245.45", "245.46"]
    assert [str(x) for x in (sv_a, sv_b, sv_c)] == ["294.54", "294.54", "294.56"]

    # Activated, Paris time: A 15 March 09:00, B 20 March 14:00, C 10 April 08:00 (UTC+1 in March,
    # UTC+2 from 29 March). Hardware control transfers at activation; each device commits 12 months.
    activated = {
        "A": local_day(datetime(2026, 3, 15, 8, 0, tzinfo=UTC), PARIS),
        "B": local_day(datetime(2026, 3, 20, 13, 0, tzinfo=UTC), PARIS),
        "C": local_day(datetime(2026, 4, 10, 6, 0, tzinfo=UTC), PARIS),
    }
    assert committed_term_end(activated["A"], 12) == date(2027, 3, 15)

    def service_schedule(amount: Decimal, start: date) -> list[Recognition]:
        return ratable_schedule(amount, start=start, end=committed_term_end(start, 12), currency="EUR")

    schedules = {
        "hardware A": point_in_time_schedule(hw_a, on=activated["A"]),
        "hardware B": point_in_time_schedule(hw_b, on=activated["B"]),
        "hardware C": point_in_time_schedule(hw_c, on=activated["C"]),
        "service A": service_schedule(sv_a, activated["A"]),
        "service B": service_schedule(sv_b, activated["B"]),
        "service C": service_schedule(sv_c, activated["C"]),
        # March usage: 3800 − 2 × 1024 = 1752 MB × 0.010 = 17.52 over its usage period 1 March – 1 April.
        "usage March": usage_schedule(Decimal("17.52"), start=MARCH, end=date(2026, 4, 1), currency="EUR"),
    }
    march = {name: str(recognized_in(schedule, MARCH)) for name, schedule in schedules.items()}
    assert march == {
        "hardware A": "245.45",
        "hardware B": "245.45",  # A + B = 490.90
        "hardware C": "0",  # activated in April
        "service A": "13.72",  # 294.54 × 17/365 = 13.7183… (15–31 March of 15 Mar 2026 – 15 Mar 2027)
        "service B": "9.68",  # 294.54 × 12/365 = 9.6835… (20–31 March of 20 Mar 2026 – 20 Mar 2027)
        "service C": "0",
        "usage March": "17.52",
    }
    # 490.90 + 13.72 + 9.68 + 17.52 = 531.82
    assert sum((recognized_in(s, MARCH) for s in schedules.values()), Decimal(0)) == Decimal("531.82")
    # Every schedule recognizes exactly its allocation: 736.36 + 883.64 + 17.52 = 1,637.52.
    assert sum((line.amount for s in schedules.values() for line in s), Decimal(0)) == Decimal("1637.52")


def test_ratable_schedule_of_service_a() -> None:
    # 294.54 over 15 Mar 2026 – 15 Mar 2027 (365 days): recognized to date at each month's end,
    # round(294.54 × days / 365), and each month the difference.
    schedule = ratable_schedule(Decimal("294.54"), start=date(2026, 3, 15), end=date(2027, 3, 15), currency="EUR")
    assert len(schedule) == 13  # March 2026 to March 2027
    assert amounts(schedule)[:3] == [
        ("2026-03-01", "13.72"),  # 17 days: 13.7183… -> 13.72
        ("2026-04-01", "24.21"),  # 47 days: 37.9271… -> 37.93, minus 13.72
        ("2026-05-01", "25.01"),  # 78 days: 62.9428… -> 62.94, minus 37.93
    ]
    # To the end of February 2027, 351 days: 294.54 × 351/365 = 283.2424… -> 283.24; March 2027
    # (1–14) reaches the whole amount: 294.54 − 283.24 = 11.30.
    assert amounts(schedule)[-1] == ("2027-03-01", "11.30")
    assert sum((line.amount for line in schedule), Decimal(0)) == Decimal("294.54")


def test_ratable_schedule_within_one_month() -> None:
    schedule = ratable_schedule(Decimal("10.00"), start=date(2026, 2, 3), end=date(2026, 2, 20), currency="EUR")
    assert amounts(schedule) == [("2026-02-01", "10.00")]


@pytest.mark.parametrize(
    ("through", "expected"),
    [
        pytest.param(date(2026, 3, 1), "0.00", id="before-start"),
        pytest.param(date(2026, 3, 15), "0.00", id="on-start"),
        pytest.param(date(2026, 3, 16), "0.81", id="one-day"),  # 294.54 / 365 = 0.8069…
        pytest.param(date(2026, 4, 1), "13.72", id="end-of-march"),
        pytest.param(date(2027, 3, 15), "294.54", id="on-end"),
        pytest.param(date(2028, 1, 1), "294.54", id="after-end"),
    ],
)
def test_recognized_to_date(through: date, expected: str) -> None:
    amount = recognized_to_date(
        Decimal("294.54"), start=date(2026, 3, 15), end=date(2027, 3, 15), through=through, currency="EUR"
    )
    assert str(amount) == expected


def test_usage_over_a_period_across_two_months() -> None:
    # 31.00 over 15 March – 15 April (31 days): 17 days in March = 17.00, 14 in April = 14.00
    schedule = usage_schedule(Decimal("31.00"), start=date(2026, 3, 15), end=date(2026, 4, 15), currency="EUR")
    assert amounts(schedule) == [("2026-03-01", "17.00"), ("2026-04-01", "14.00")]


def test_days_are_the_customers() -> None:
    # 22:30 UTC on 31 March is 00:30 on 1 April in Paris: hardware activated then is April revenue.
    day = local_day(datetime(2026, 3, 31, 22, 30, tzinfo=UTC), PARIS)
    assert amounts(point_in_time_schedule(Decimal("245.46"), on=day)) == [("2026-04-01", "245.46")]
    assert local_day(datetime(2026, 3, 31, 22, 30, tzinfo=UTC), "America/New_York") == date(2026, 3, 31)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        pytest.param(date(2026, 3, 15), 12, date(2027, 3, 15), id="twelve-months"),
        pytest.param(date(2026, 1, 31), 1, date(2026, 2, 28), id="clamped"),
        pytest.param(date(2027, 2, 28), 12, date(2028, 2, 28), id="leap-year"),  # 365 days, through 29 Feb 2028
    ],
)
def test_committed_term_end(start: date, months: int, end: date) -> None:
    assert committed_term_end(start, months) == end


def test_refusals() -> None:
    with pytest.raises(ValueError, match="ends after it starts"):
        ratable_schedule(Decimal("1.00"), start=date(2026, 3, 1), end=date(2026, 3, 1), currency="EUR")
    with pytest.raises(ValueError, match="at least one month"):
        committed_term_end(date(2026, 3, 1), 0)


@settings(deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=10_000_000_00).map(lambda n: Decimal(n).scaleb(-2)),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    days=st.integers(min_value=1, max_value=5 * 366),
)
def test_every_schedule_sums_to_its_allocation(amount: Decimal, start: date, days: int) -> None:
    end = date.fromordinal(start.toordinal() + days)
    schedule = ratable_schedule(amount, start=start, end=end, currency="EUR")
    assert sum((line.amount for line in schedule), Decimal(0)) == amount
    # One line per calendar month touched, in order, none negative, none below the cent.
    months = [line.month for line in schedule]
    assert months == sorted(set(months))
    assert months[0] == start.replace(day=1)
    assert months[-1] == date.fromordinal(end.toordinal() - 1).replace(day=1)
    assert all(line.amount >= 0 and line.amount == line.amount.quantize(Decimal("0.01")) for line in schedule)
