"""Monthly exchange rates into the reporting currency (analytics.md), and the one way reports
convert with them.

The reporting currency is the tenant's (``Tenant.default_currency``). For each calendar month and
other currency, finance enters (or imports from a CSV) what one unit of that currency is worth in
the reporting currency: 1 USD = 0.92 EUR is ``rate = 0.92`` and 100.00 USD reports as 92.00 EUR.
A month without a rate for a currency in use is *missing*: its conversion is ``None``, never a
conversion at 1, so a total that needs it is reported as unknown rather than silently wrong.

For reports (the public API of this module)::

    table = RateTable.load(tenant=tenant, months=months, currencies={"USD", "GBP"})  # one query
    table.convert(Decimal("100.00"), "USD", date(2026, 4, 1))  # Decimal("92.00"), or None if missing
    table.missing(currencies={"USD"}, months=months)  # [(date(2026, 5, 1), "USD"), ...]

``convert`` rounds once to the reporting currency's minor unit (half up); an amount already in the
reporting currency comes back unchanged. Convert each currency's total, then add the converted
totals: that is how the MRR report does it.

For writes: ``exchange_rates_set`` (the API and the back-office form) and
``exchange_rates_import_csv`` (a ``month,currency,rate`` file). Both validate every row first and
write all or nothing, in one statement.
"""

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import QuerySet

from billing_platform.errors import InvalidInput
from billing_platform.money import is_known_currency, round_minor
from billing_platform.validation import FieldErrors
from revrec.models import ExchangeRate, RateSource
from tenancy.actors import Actor
from tenancy.models import Tenant

# A rate has at most 10 places and is below 10^10 (the column's numeric(20, 10)).
RATE_PLACES = 10
RATE_LIMIT = Decimal(10) ** 10
# One import holds at most this many rows: ten years of a hundred currencies and more.
MAX_CSV_ROWS = 20_000
CSV_HEADER = ("month", "currency", "rate")


def month_of(day: date) -> date:
    """The first day of ``day``'s month: rates are named by it."""
    return date(day.year, day.month, 1)


@dataclass(frozen=True)
class RateTable:
    """Rates of some months and currencies into ``reporting_currency``, loaded once."""

    reporting_currency: str
    rates: Mapping[tuple[date, str], Decimal]

    @classmethod
    def load(cls, *, tenant: Tenant, months: Iterable[date], currencies: Iterable[str]) -> "RateTable":
        """The tenant's rates of ``months`` (any day of each) for ``currencies``: one query, none
        when every currency is the reporting one."""
        wanted = {c for c in currencies if c != tenant.default_currency}
        firsts = {month_of(m) for m in months}
        rates: dict[tuple[date, str], Decimal] = {}
        if wanted and firsts:
            rows = ExchangeRate.objects.filter(tenant=tenant, month__in=firsts, currency__in=wanted).values_list(
                "month", "currency", "rate"
            )
            rates = {(month, currency): rate for month, currency, rate in rows}
        return cls(tenant.default_currency, rates)

    def rate(self, currency: str, month: date) -> Decimal | None:
        """One unit of ``currency`` in the reporting currency in ``month``; 1 for the reporting
        currency itself; None when no rate was entered."""
        if currency == self.reporting_currency:
            return Decimal(1)
        return self.rates.get((month_of(month), currency))

    def convert(self, amount: Decimal, currency: str, month: date) -> Decimal | None:
        """``amount`` of ``currency`` in the reporting currency at ``month``'s rate, rounded once to
        the reporting currency's minor unit (100.00 USD x 0.92 = 92.00 EUR); None when the rate is
        missing. An amount in the reporting currency comes back as it is."""
        if currency == self.reporting_currency:
            return amount
        rate = self.rate(currency, month)
        if rate is None:
            return None
        return round_minor(amount * rate, self.reporting_currency)

    def missing(self, *, currencies: Iterable[str], months: Iterable[date]) -> list[tuple[date, str]]:
        """The (month, currency) pairs without a rate, by month then currency."""
        return sorted(
            (month_of(m), c)
            for m in set(months)
            for c in set(currencies)
            if c != self.reporting_currency and (month_of(m), c) not in self.rates
        )


@dataclass(frozen=True)
class RateInput:
    """One row to write, as received: validated by ``exchange_rates_set``."""

    month: str  # YYYY-MM
    currency: str
    rate: str


def parse_month(raw: str) -> date | None:
    """``YYYY-MM`` (years 1900 to 9999) as the month's first day, or None."""
    parts = raw.split("-")
    if len(parts) == 2 and len(parts[0]) == 4 and len(parts[1]) == 2 and raw.isascii() and "".join(parts).isdigit():
        year, month = int(parts[0]), int(parts[1])
        if 1900 <= year <= 9999 and 1 <= month <= 12:
            return date(year, month, 1)
    return None


def _parse_rate(raw: str) -> Decimal | None:
    try:
        rate = Decimal(raw.strip())
    except (InvalidOperation, ValueError):
        return None
    return rate if rate.is_finite() else None


def _validated(
    *, tenant: Tenant, rows: Sequence[RateInput], prefix: str, numbers: Sequence[int]
) -> list[tuple[date, str, Decimal]]:
    """Every row checked, each error on its own path (``rates[2].rate``, ``lines[5].currency``):
    the month, a known currency other than the reporting one, a positive rate of at most 10 places,
    each (month, currency) once."""
    errors = FieldErrors()
    clean: list[tuple[date, str, Decimal]] = []
    seen: dict[tuple[date, str], int] = {}
    for number, row in zip(numbers, rows, strict=True):
        path = "%s[%d]" % (prefix, number)
        month = parse_month(row.month.strip())
        currency = row.currency.strip().upper()
        rate = _parse_rate(row.rate)
        if month is None:
            errors.add(path + ".month", "invalid", "A month is YYYY-MM.")
        if not is_known_currency(currency):
            errors.add(path + ".currency", "unknown_currency", "Unknown ISO 4217 currency: %s." % currency[:10])
        elif currency == tenant.default_currency:
            errors.add(path + ".currency", "reporting_currency", "%s is the reporting currency." % currency)
        if rate is None:
            errors.add(path + ".rate", "invalid", "A rate is a decimal number such as 0.92.")
        elif rate <= 0:
            errors.add(path + ".rate", "not_positive", "A rate is more than 0.")
        elif rate >= RATE_LIMIT or -rate.as_tuple().exponent > RATE_PLACES:  # type: ignore[operator]
            errors.add(path + ".rate", "out_of_range", "A rate is below 10^10, with at most 10 decimal places.")
        if month is not None and rate is not None and is_known_currency(currency):
            key = (month, currency)
            if key in seen:
                errors.add(path, "duplicate", "%s %s is already on row %d." % (row.month, currency, seen[key]))
            seen[key] = number
            clean.append((month, currency, rate))
    errors.raise_if_any()
    return clean


def exchange_rates_set(
    *, tenant: Tenant, rates: Sequence[RateInput], actor: Actor, at: datetime, source: str = RateSource.MANUAL
) -> list[ExchangeRate]:
    """Write ``rates`` (each replaces the tenant's rate of its month and currency, if any): all of
    them or none, in one statement. Raises ``InvalidInput`` with an error per bad row."""
    if not rates:
        raise InvalidInput("No rate given.", errors=[])
    clean = _validated(tenant=tenant, rows=rates, prefix="rates", numbers=range(len(rates)))
    return _write(tenant=tenant, rows=clean, actor=actor, at=at, source=source)


def exchange_rates_import_csv(*, tenant: Tenant, content: str, actor: Actor, at: datetime) -> list[ExchangeRate]:
    """Import a CSV file whose header is ``month,currency,rate`` (``2026-04,USD,0.92``). Every line
    is checked first; errors name the file's line (``lines[3].rate``, the header being line 1), and
    nothing is written unless every line is valid."""
    reader = csv.reader(io.StringIO(content.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        lines = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise InvalidInput("The file is not a CSV file: %s." % exc, errors=[]) from None
    if tuple(header) != CSV_HEADER:
        raise InvalidInput(
            "The first line must be month,currency,rate.",
            errors=[],
            code="invalid_csv_header",
        )
    if not lines:
        raise InvalidInput("The file holds no rate.", errors=[], code="empty_csv")
    if len(lines) > MAX_CSV_ROWS:
        raise InvalidInput("At most %d lines." % MAX_CSV_ROWS, errors=[], code="too_many_lines")
    errors = FieldErrors()
    rows: list[RateInput] = []
    for number, cells in lines:
        if len(cells) != len(CSV_HEADER):
            errors.add("lines[%d]" % number, "invalid", "A line is month,currency,rate.")
            continue
        rows.append(RateInput(*cells))
    errors.raise_if_any()
    clean = _validated(tenant=tenant, rows=rows, prefix="lines", numbers=[n for n, _ in lines])
    return _write(tenant=tenant, rows=clean, actor=actor, at=at, source=RateSource.CSV)


def _write(
    *, tenant: Tenant, rows: Sequence[tuple[date, str, Decimal]], actor: Actor, at: datetime, source: str
) -> list[ExchangeRate]:
    objects = [
        ExchangeRate(
            tenant=tenant,
            month=month,
            currency=currency,
            rate=rate,
            source=source,
            entered_by=actor.label[:200],
            entered_at=at,
        )
        for month, currency, rate in rows
    ]
    with transaction.atomic():
        return ExchangeRate.objects.bulk_create(
            objects,
            update_conflicts=True,
            unique_fields=["tenant", "month", "currency"],
            update_fields=["rate", "source", "entered_by", "entered_at"],
        )


def exchange_rate_list(
    *, tenant: Tenant, start: date | None = None, end: date | None = None, currency: str | None = None
) -> QuerySet[ExchangeRate]:
    """The tenant's rates, latest month first, optionally from ``start``'s month to ``end``'s and
    of one currency."""
    qs = ExchangeRate.objects.filter(tenant=tenant)
    if start is not None:
        qs = qs.filter(month__gte=month_of(start))
    if end is not None:
        qs = qs.filter(month__lte=month_of(end))
    if currency:
        qs = qs.filter(currency=currency)
    return qs.order_by("-month", "currency")


__all__ = [
    "CSV_HEADER",
    "RateInput",
    "RateTable",
    "exchange_rate_list",
    "exchange_rates_import_csv",
    "exchange_rates_set",
    "month_of",
    "parse_month",
]
