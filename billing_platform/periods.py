"""Billing periods: half-open ``[start, end)`` intervals of local midnights in the customer's zone.

One implementation for the whole product. Periods are computed in the customer's time zone and
stored in UTC. Month arithmetic clamps to the month's last day, but the billing day itself is
kept: a billing day of 31 gives 31 Jan, 28 Feb, 31 Mar, 30 Apr (never 31 -> 28 -> 28).
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval ``start <= t < end`` of aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("period end must be after its start")

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def clamp_day(year: int, month: int, day: int) -> date:
    """The date with ``day`` in that month, or the month's last day: (2026, 2, 31) -> 2026-02-28."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def billing_date_on_or_before(day: date, billing_day: int) -> date:
    """The latest billing date <= ``day`` for a billing day 1..31 (clamped in short months)."""
    _check_billing_day(billing_day)
    candidate = clamp_day(day.year, day.month, billing_day)
    if candidate <= day:
        return candidate
    year, month = add_months(day.year, day.month, -1)
    return clamp_day(year, month, billing_day)


def next_billing_date(after: date, billing_day: int) -> date:
    """The first billing date strictly after ``after``."""
    _check_billing_day(billing_day)
    candidate = clamp_day(after.year, after.month, billing_day)
    if candidate > after:
        return candidate
    year, month = add_months(after.year, after.month, 1)
    return clamp_day(year, month, billing_day)


def local_midnight(day: date, tz: str | ZoneInfo) -> datetime:
    """Midnight starting ``day`` in ``tz``, as an aware UTC datetime."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def local_date(instant: datetime, tz: str | ZoneInfo) -> date:
    """The calendar date of an instant as seen in ``tz`` (2026-03-31T22:30Z is 1 April in Paris)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return instant.astimezone(zone).date()


def monthly_period_containing(instant: datetime, *, billing_day: int, tz: str) -> Period:
    """The monthly billing period of a customer that contains ``instant``."""
    start_day = billing_date_on_or_before(local_date(instant, tz), billing_day)
    return Period(local_midnight(start_day, tz), local_midnight(next_billing_date(start_day, billing_day), tz))


def monthly_period_starting(day: date, *, billing_day: int, tz: str) -> Period:
    """The monthly period that starts on the billing date ``day``: ``[day, next billing date)``."""
    return Period(local_midnight(day, tz), local_midnight(next_billing_date(day, billing_day), tz))


def days_in(period: Period, tz: str) -> int:
    """Calendar days of the period in ``tz``; a DST change inside it does not change the count."""
    return (local_date(period.end, tz) - local_date(period.start, tz)).days


def active_days(period: Period, *, active_from: datetime, active_until: datetime | None, tz: str) -> int:
    """Days of ``period`` on which something was active at any moment, counted in ``tz``.

    The activation day counts, the deactivation day does not (specs: proration by calendar days).
    """
    first = max(local_date(active_from, tz), local_date(period.start, tz))
    last_excl = local_date(period.end, tz)
    if active_until is not None:
        last_excl = min(last_excl, local_date(active_until, tz))
    return max((last_excl - first).days, 0)


def proration_fraction(period: Period, *, active_from: datetime, active_until: datetime | None, tz: str) -> Decimal:
    """Days used / days in the period, unrounded: activation 15 March in March -> 17/31."""
    return Decimal(active_days(period, active_from=active_from, active_until=active_until, tz=tz)) / Decimal(
        days_in(period, tz)
    )


def _check_billing_day(billing_day: int) -> None:
    if not 1 <= billing_day <= 31:
        raise ValueError("billing day must be between 1 and 31")


__all__ = [
    "Period",
    "active_days",
    "add_months",
    "billing_date_due",
    "billing_date_on_or_before",
    "interval_period_containing",
    "clamp_day",
    "days_in",
    "local_date",
    "local_midnight",
    "monthly_period_containing",
    "monthly_period_starting",
    "next_billing_date",
    "proration_fraction",
]


def interval_period_containing(instant: datetime, *, billing_day: int, months: int, anchor: date, tz: str) -> Period:
    """The period of ``months`` months (1, 3, 12) that contains ``instant``. Periods start on billing
    dates in the anchor's month and every ``months`` after it (a yearly plan started in March renews
    each March); for ``months=1`` this is ``monthly_period_containing``."""
    _check_billing_day(billing_day)
    local = local_date(instant, tz)
    offset = (local.year * 12 + local.month - 1) - (anchor.year * 12 + anchor.month - 1)
    k = offset // months
    for step in (k, k - 1):
        year, month = add_months(anchor.year, anchor.month, step * months)
        start = clamp_day(year, month, billing_day)
        if start <= local:
            end_year, end_month = add_months(year, month, months)
            return Period(local_midnight(start, tz), local_midnight(clamp_day(end_year, end_month, billing_day), tz))
    raise AssertionError("unreachable: the previous period always starts before the instant")


def billing_date_due(instant: datetime, *, billing_day: int, tz: str) -> date:
    """The latest billing date a customer has reached at ``instant``, in its own time zone.

    A bill run at 2026-03-31T23:00Z finds a Paris customer (1 April, 01:00) due for 1 April, and a
    Los Angeles customer (31 March, 16:00) still on 1 March: nobody is billed a day early or twice.
    """
    return billing_date_on_or_before(local_date(instant, tz), billing_day)
