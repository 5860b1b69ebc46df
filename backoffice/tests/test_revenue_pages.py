"""Revenue pages of the back-office (/app/revenue/, /app/revenue/journal/) and their CSV downloads,
on the Smart Fleet history of ``revrec.tests.reports_data``: runs of March to May 2026, the fleet's
invoices (530.00 on 1 April, a 30.00 credit note on 20 April, 600.00 on 5 May) and a second
contract's 100.00 on 10 April."""

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from djmoney.money import Money

from backoffice.csv_export import csv_cell

# The revrec tests' fixtures: the Smart Fleet contract (A and B activated in March) and its history.
from revrec.tests.conftest import PARIS, fleet, fleet_contract  # noqa: F401
from revrec.tests.reports_data import history  # noqa: F401
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
RANGE = {"start": "2026-03", "end": "2026-05"}


@pytest.fixture(autouse=True)
def _in_june() -> Any:
    with time_machine.travel(datetime(2026, 6, 15, 10, 0, tzinfo=PARIS), tick=True):
        yield


def client_for(tenant: Tenant, make_staff: StaffMaker, role: str = Role.FINANCE_VIEWER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "finance@acme.test"))
    return client


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).replace("&#x27;", "'")


def rows(response: Any) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.usefixtures("history")
def test_the_revenue_page(tenant: Tenant, make_staff: StaffMaker, django_assert_max_num_queries: Any) -> None:
    client = client_for(tenant, make_staff)
    with django_assert_max_num_queries(14):  # session, user, membership, tenant, then the report's five
        response = client.get("/app/revenue/", RANGE)
    assert response.status_code == 200
    page = text(response)
    assert "Mar 2026 – May 2026" in page
    # March: hardware 490.90, service 23.40, 514.30; over the three months 514.30 + 48.42 + 50.03 = 612.75.
    assert "Mar 2026 €490.90 €23.40 €0.00 €0.00 €514.30" in page
    assert "Total €490.90 €121.85 €0.00 €0.00 €612.75" in page  # service 23.40 + 48.42 + 50.03
    # Balances at 30 April: deferred 100.00, asset 62.72, net 37.28; billings 600.00 against 48.42.
    assert "Apr 2026 €100.00 €62.72 €37.28" in page
    assert "Apr 2026 €600.00 €48.42 €551.58" in page
    # The waterfall as of May: June 48.42, C unscheduled 540.02, 1,007.25 in all.
    assert "Jun 2026 €48.42" in page
    assert "Unscheduled €540.02 Total €1,007.25" in page
    body = response.content.decode()
    assert 'id="revenue-charts-data"' in body
    assert '"490.90"' in body  # the chart's data: amounts as strings
    assert 'href="/app/revenue/export/revenue.csv?start=2026-03&amp;end=2026-05"' in body
    assert 'aria-current="page">Revenue</a>' in body


def test_the_last_twelve_months_by_default(tenant: Tenant, make_staff: StaffMaker) -> None:
    page = text(client_for(tenant, make_staff).get("/app/revenue/"))
    # Today is 15 June 2026 in Paris.
    assert "Jul 2025 – Jun 2026" in page
    assert "No revenue, billing or contract in these months." in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-13", "end": "2026-05"}, "Enter a month as YYYY-MM."),
        ({"start": "2026-06", "end": "2026-05"}, "The first month comes after the last."),
        ({"start": "2016-05", "end": "2026-05"}, "At most 120 months."),
    ],
)
def test_a_range_that_makes_no_report_shows_the_default(
    tenant: Tenant, make_staff: StaffMaker, query: dict[str, str], message: str
) -> None:
    response = client_for(tenant, make_staff).get("/app/revenue/", query)
    assert response.status_code == 200
    assert message in text(response)
    assert "Showing Jul 2025 – Jun 2026." in text(response)


@pytest.mark.usefixtures("history")
def test_the_tables_download_as_csv(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    revenue = rows(client.get("/app/revenue/export/revenue.csv", RANGE))
    assert revenue[0] == ["Currency", "Month", "Hardware", "Service", "Usage", "Fees", "Total"]
    assert revenue[1:] == [
        ["EUR", "2026-03", "490.90", "23.40", "0.00", "0.00", "514.30"],
        ["EUR", "2026-04", "0.00", "48.42", "0.00", "0.00", "48.42"],
        ["EUR", "2026-05", "0.00", "50.03", "0.00", "0.00", "50.03"],
    ]
    balances = rows(client.get("/app/revenue/export/balances.csv", RANGE))
    assert balances[1:] == [
        ["EUR", "2026-03", "0.00", "514.30", "-514.30"],
        ["EUR", "2026-04", "100.00", "62.72", "37.28"],
        ["EUR", "2026-05", "587.25", "0.00", "587.25"],
    ]
    billings = rows(client.get("/app/revenue/export/billings.csv", RANGE))
    assert billings[2] == ["EUR", "2026-04", "600.00", "48.42", "551.58"]
    waterfall = rows(client.get("/app/revenue/export/waterfall.csv", RANGE))
    assert waterfall[1:3] == [["EUR", "2026-05", "0.00"], ["EUR", "2026-06", "48.42"]]
    assert waterfall[-1] == ["EUR", "Unscheduled", "540.02"]
    response = client.get("/app/revenue/export/revenue.csv", RANGE)
    assert response["Content-Disposition"] == 'attachment; filename="revenue-revenue-2026-03-2026-05.csv"'
    assert client.get("/app/revenue/export/secrets.csv").status_code == 404


@pytest.mark.usefixtures("history")
def test_the_journal_of_a_period(tenant: Tenant, make_staff: StaffMaker, django_assert_max_num_queries: Any) -> None:
    client = client_for(tenant, make_staff)
    with django_assert_max_num_queries(14):
        response = client.get("/app/revenue/journal/", {"period": "2026-04"})
    assert response.status_code == 200
    page = text(response)
    assert "4 entries in EUR" in page
    # Debits 636.00 + 120.00 + 6.00 + 30.00 + 48.42 = 840.42, and as much credited.
    assert "Debit €840.42 · Credit €840.42 Balanced" in page
    assert "Total of the period, EUR €840.42 €840.42" in page
    # The fleet's invoice and its three lines: 636.00 gross, 106.00 VAT, 530.00 net.
    assert "Accounts receivable €636.00 Tax payable €106.00 Contract balance €530.00" in page
    assert "Contract balance €48.42 Revenue: service €48.42" in page
    only = text(client.get("/app/revenue/journal/", {"period": "2026-04", "source_type": "recognition"}))
    assert "1 entry in EUR" in only


@pytest.mark.usefixtures("history")
def test_the_journal_downloads_one_line_a_row(tenant: Tenant, make_staff: StaffMaker) -> None:
    lines = rows(client_for(tenant, make_staff).get("/app/revenue/journal/export.csv", {"period": "2026-04"}))
    header, data = lines[0], lines[1:]
    assert header[1:] == [
        "Date",
        "Period",
        "Source",
        "Source id",
        "Subscription",
        "Currency",
        "Account",
        "Debit",
        "Credit",
    ]
    # Three invoices of three lines, April's recognition of two.
    assert len(data) == 11
    assert data[0][1:] == [
        "2026-04-01",
        "2026-04",
        "invoice",
        "F-2026-04-01",
        "dupont-fleet",
        "EUR",
        "receivable",
        "636.00",
        "0.00",
    ]
    assert data[-1][7:] == ["revenue_service", "0.00", "48.42"]
    assert sum(Decimal(row[8]) for row in data) == sum(Decimal(row[9]) for row in data) == Decimal("840.42")


@pytest.mark.usefixtures("history")
def test_the_pages_in_french(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    page = text(client.get("/app/revenue/", RANGE, HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Produits constatés d'avance" in page
    assert "514,30" in page
    journal = text(client.get("/app/revenue/journal/", {"period": "2026-04"}, HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Équilibré" in journal


def test_support_agents_do_not_see_revenue(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff, Role.SUPPORT_AGENT)
    for path in ("/app/revenue/", "/app/revenue/journal/", "/app/revenue/export/revenue.csv"):
        assert client.get(path).status_code == 403


@pytest.mark.usefixtures("history")
def test_another_tenants_staff_sees_none_of_it(other_tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(other_tenant, make_staff)
    assert "No revenue, billing or contract in these months." in text(client.get("/app/revenue/", RANGE))
    assert rows(client.get("/app/revenue/journal/export.csv", {"period": "2026-04"}))[1:] == []


def test_csv_cells_keep_numbers_and_defuse_formulas() -> None:
    assert csv_cell(Money("-25", "EUR")) == Decimal("-25.00")
    assert csv_cell(Money("1000", "JPY")) == Decimal("1000")
    assert csv_cell(Decimal("-1.50")) == Decimal("-1.50")
    assert csv_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert csv_cell("-2+3") == "'-2+3"
    assert (csv_cell(None), csv_cell("dupont-fleet")) == ("", "dupont-fleet")
