"""Revenue by stream in the reporting currency (analytics.md: other currencies convert at the
month's rate; a month without a rate for a currency in use is reported as missing, never at 1)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from revrec.models import ExchangeRate, RateSource
from revrec.reports import StreamRevenue, in_reporting_currency
from tenancy.models import Tenant

MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)
AT = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)


def row(month: date, currency: str, hardware: str, service: str, usage: str = "0") -> StreamRevenue:
    zero = Money(0, currency)
    return StreamRevenue(month, Money(hardware, currency), Money(service, currency), Money(usage, currency), zero)


@pytest.mark.django_db
def test_each_currency_converts_at_its_months_rate_and_a_missing_rate_is_never_one(tenant: Tenant) -> None:
    assert tenant.default_currency == "EUR"
    ExchangeRate.objects.create(
        tenant=tenant, month=MARCH, currency="USD", rate=Decimal("0.92"), source=RateSource.MANUAL, entered_at=AT
    )
    revenue = {
        "EUR": [row(MARCH, "EUR", "490.90", "23.40", "17.52"), row(APRIL, "EUR", "0", "48.42")],
        "USD": [row(MARCH, "USD", "0", "100.00"), row(APRIL, "USD", "0", "10.00")],
    }
    march, april = in_reporting_currency(tenant=tenant, revenue=revenue)
    # March: service 23.40 EUR + 100.00 USD x 0.92 = 23.40 + 92.00 = 115.40; hardware 490.90 (EUR
    # only: USD's hardware is zero); usage 17.52; total 490.90 + 115.40 + 17.52 = 623.82.
    assert (march.hardware, march.service, march.usage, march.fees) == (
        Decimal("490.90"),
        Decimal("115.40"),
        Decimal("17.52"),
        Decimal("0"),
    )
    assert (march.total, march.missing_rates) == (Decimal("623.82"), [])
    # April has no USD rate: service (48.42 EUR + 10.00 USD) and the total are unknown, not 58.42.
    assert (april.hardware, april.service, april.total, april.missing_rates) == (Decimal("0"), None, None, ["USD"])
