"""Monthly exchange rates: the RateTable reports use (a missing rate is None, never 1), rates set
all or nothing, and the CSV import refusing a file with one bad line whole."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing_platform.errors import InvalidInput
from revrec.models import ExchangeRate, RateSource
from revrec.rates import RateInput, RateTable, exchange_rates_import_csv, exchange_rates_set
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
AT = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)
FINANCE = Actor("user", "1", "anne@acme.test")


def test_a_table_converts_at_the_months_rate_and_reports_a_missing_one(
    tenant: Tenant, django_assert_num_queries: object
) -> None:
    # given: the tenant reports in EUR; 1 USD = 0.92 EUR in April, no rate for May
    exchange_rates_set(tenant=tenant, rates=[RateInput("2026-04", "USD", "0.92")], actor=FINANCE, at=AT)
    # when: one query for every month and currency
    with django_assert_num_queries(1):  # type: ignore[operator]
        table = RateTable.load(tenant=tenant, months=[date(2026, 4, 1), date(2026, 5, 1)], currencies={"USD", "EUR"})
    # then: 100.00 USD x 0.92 = 92.00 EUR; 33.33 x 0.92 = 30.6636 -> 30.66; any day of April works
    assert table.convert(Decimal("100.00"), "USD", date(2026, 4, 1)) == Decimal("92.00")
    assert table.convert(Decimal("33.33"), "USD", date(2026, 4, 17)) == Decimal("30.66")
    assert table.convert(Decimal("100.00"), "USD", date(2026, 5, 1)) is None  # missing, never x 1
    assert table.convert(Decimal("7.50"), "EUR", date(2026, 5, 1)) == Decimal("7.50")  # the reporting currency
    assert table.missing(currencies={"USD", "EUR"}, months=[date(2026, 4, 1), date(2026, 5, 1)]) == [
        (date(2026, 5, 1), "USD")
    ]


def test_only_the_reporting_currency_needs_no_query(tenant: Tenant, django_assert_num_queries: object) -> None:
    with django_assert_num_queries(0):  # type: ignore[operator]
        table = RateTable.load(tenant=tenant, months=[date(2026, 4, 1)], currencies={"EUR"})
    assert table.rate("EUR", date(2026, 4, 1)) == Decimal(1)


def test_a_rate_set_again_replaces_the_months_rate(tenant: Tenant) -> None:
    exchange_rates_set(tenant=tenant, rates=[RateInput("2026-04", "USD", "0.92")], actor=FINANCE, at=AT)
    exchange_rates_set(tenant=tenant, rates=[RateInput("2026-04", "usd", "0.93")], actor=FINANCE, at=AT)
    (rate,) = ExchangeRate.objects.filter(tenant=tenant)
    assert (rate.month, rate.currency, rate.rate, rate.source, rate.entered_by) == (
        date(2026, 4, 1),
        "USD",
        Decimal("0.93"),
        RateSource.MANUAL,
        "anne@acme.test",
    )


def test_bad_rows_are_all_named_and_nothing_is_written(tenant: Tenant) -> None:
    rows = [
        RateInput("2026-04", "USD", "0.92"),  # fine, yet not written
        RateInput("2026-4", "GBP", "1.17"),
        RateInput("2026-04", "XYZ", "1"),
        RateInput("2026-04", "EUR", "1"),
        RateInput("2026-04", "CHF", "0"),
        RateInput("2026-04", "JPY", "0.00612345678901"),
        RateInput("2026-04", "USD", "0.91"),
    ]
    with pytest.raises(InvalidInput) as caught:
        exchange_rates_set(tenant=tenant, rates=rows, actor=FINANCE, at=AT)
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("rates[1].month", "invalid"),
        ("rates[2].currency", "unknown_currency"),
        ("rates[3].currency", "reporting_currency"),
        ("rates[4].rate", "not_positive"),
        ("rates[5].rate", "out_of_range"),  # 14 decimal places
        ("rates[6]", "duplicate"),
    ]
    assert not ExchangeRate.objects.filter(tenant=tenant).exists()


def test_a_csv_file_is_imported_whole(tenant: Tenant) -> None:
    content = "\ufeffmonth,currency,rate\r\n2026-04,USD,0.92\r\n2026-05,USD,0.9150\r\n\r\n2026-05,GBP,1.17\r\n"
    written = exchange_rates_import_csv(tenant=tenant, content=content, actor=FINANCE, at=AT)
    assert len(written) == 3
    rows = ExchangeRate.objects.filter(tenant=tenant).order_by("month", "currency")
    assert [(r.month, r.currency, r.rate, r.source) for r in rows] == [
        (date(2026, 4, 1), "USD", Decimal("0.92"), "csv"),
        (date(2026, 5, 1), "GBP", Decimal("1.17"), "csv"),
        (date(2026, 5, 1), "USD", Decimal("0.915"), "csv"),
    ]


def test_a_csv_file_with_a_bad_line_imports_nothing(tenant: Tenant) -> None:
    # lines are numbered as in the file: the header is line 1
    content = "month,currency,rate\n2026-04,USD,0.92\n2026-05,USD,abc\n2026-05,GBP\n"
    with pytest.raises(InvalidInput) as caught:
        exchange_rates_import_csv(tenant=tenant, content=content, actor=FINANCE, at=AT)
    assert [(e.field, e.code) for e in caught.value.errors] == [("lines[4]", "invalid")]
    content = "month,currency,rate\n2026-04,USD,0.92\n2026-05,USD,abc\n"
    with pytest.raises(InvalidInput) as caught:
        exchange_rates_import_csv(tenant=tenant, content=content, actor=FINANCE, at=AT)
    assert [(e.field, e.code) for e in caught.value.errors] == [("lines[3].rate", "invalid")]
    assert not ExchangeRate.objects.filter(tenant=tenant).exists()


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("currency,month,rate\n2026-04,USD,1\n", "invalid_csv_header"),
        ("month,currency,rate\n", "empty_csv"),
        ("", "invalid_csv_header"),
    ],
)
def test_a_file_that_is_no_rate_file_is_refused(tenant: Tenant, content: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        exchange_rates_import_csv(tenant=tenant, content=content, actor=FINANCE, at=AT)
    assert caught.value.code == code
