"""Recognition schedules: how much of an allocated amount each calendar month recognizes.

Pure functions, no database. Days are local dates in the customer's time zone (``local_day`` turns
an instant into one); a term is half-open, ``start <= day < end``. Reporting periods are calendar
months, each named by its first day.

- Ratable (a service over its committed term, usage over its usage period): at the end of each
  month, recognized-to-date = round(amount x elapsed days / total days), and the month recognizes
  the difference from the month before. The last month reaches the whole amount, so a schedule
  always sums to what was allocated, whatever the rounding on the way.
- Point in time (hardware when control transfers, one-time fees): the whole amount in the month
  of that day.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing_platform.money import round_minor
from billing_platform.periods import add_months, clamp_day, local_date


@dataclass(frozen=True, slots=True)
class Recognition:
    """What one calendar month recognizes: ``month`` is the month's first day."""

    month: date
    amount: Decimal


def local_day(instant: datetime, tz: str | ZoneInfo) -> date:
    """The customer's calendar day of an instant: 2026-03-14T23:30Z is 15 March in Paris."""
    return local_date(instant, tz)


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    year, number = add_months(month.year, month.month, 1)
    return date(year, number, 1)


def committed_term_end(start: date, months: int) -> date:
    """The day after a term of ``months`` starting on ``start`` (same day of the month, clamped):
    15 March 2026 + 12 months -> 15 March 2027, a term of 365 days; 31 January + 1 -> 28 February."""
    if months < 1:
        raise ValueError("a committed term lasts at least one month")
    year, month = add_months(start.year, start.month, months)
    return clamp_day(year, month, start.day)


def _check_term(start: date, end: date) -> None:
    if end <= start:
        raise ValueError("a term ends after it starts")


def recognized_to_date(amount: Decimal, *, start: date, end: date, through: date, currency: str) -> Decimal:
    """What a ratable amount over ``[start, end)`` has recognized once the days before ``through``
    have elapsed: round(amount x elapsed / total). 294.54 over 15 Mar 2026 - 15 Mar 2027 (365 days)
    through 1 April (17 days) -> 294.54 x 17 / 365 = 13.7183... -> 13.72."""
    _check_term(start, end)
    total = (end - start).days
    elapsed = (min(max(through, start), end) - start).days
    if elapsed == total:
        return amount
    return round_minor(amount * elapsed / total, currency)


def ratable_schedule(amount: Decimal, *, start: date, end: date, currency: str) -> list[Recognition]:
    """One recognition per calendar month the term ``[start, end)`` touches, summing to ``amount``."""
    _check_term(start, end)
    schedule = []
    month = month_of(start)
    before = Decimal(0)
    while month < end:
        boundary = next_month(month)
        to_date = recognized_to_date(amount, start=start, end=end, through=boundary, currency=currency)
        schedule.append(Recognition(month=month, amount=to_date - before))
        before = to_date
        month = boundary
    return schedule


def point_in_time_schedule(amount: Decimal, *, on: date) -> list[Recognition]:
    """The whole amount in the month control transfers (hardware) or the fee is due."""
    return [Recognition(month=month_of(on), amount=amount)]


def usage_schedule(amount: Decimal, *, start: date, end: date, currency: str) -> list[Recognition]:
    """Usage is variable consideration allocated entirely to its usage period and recognized
    ratably by day over it: March's 17.52 rated over 1 March - 1 April is all March revenue; a
    usage period from 15 March to 15 April splits by its days in each month."""
    return ratable_schedule(amount, start=start, end=end, currency=currency)


def recognized_in(schedule: list[Recognition], month: date) -> Decimal:
    """What a schedule recognizes in the calendar month starting on ``month``."""
    return sum((line.amount for line in schedule if line.month == month), Decimal(0))
