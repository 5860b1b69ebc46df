"""Analytics pages (/app/analytics/): MRR with its movements chart, ARPD and NRR in the reporting
currency and missing rates flagged; usage statistics; exchange rates (table, edit, CSV import);
each table's CSV export; who may open and write."""

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from revrec.models import ExchangeRate
from revrec.tests.test_metrics_reporting import smart_fleet_history
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _on_2_june() -> Any:
    with time_machine.travel(datetime(2026, 6, 2, 10, 0, tzinfo=PARIS), tick=True):
        yield


def client_for(tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "staff@acme.test"))
    return client


def csv_text(response: Any) -> str:
    """A streamed CSV download's text."""
    return b"".join(response.streaming_content).decode()


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_mrr_page_and_its_exports(tenant: Tenant, make_staff: StaffMaker) -> None:
    # given: Smart Fleet (EUR): 50.00 in March, 75.00 in April, 50.00 in May
    smart_fleet_history(tenant)
    client = client_for(tenant, make_staff, Role.FINANCE_VIEWER)
    # when
    response = client.get("/app/analytics/mrr/", {"start": "2026-03", "end": "2026-05"})
    # then
    assert response.status_code == 200
    page = text(response)
    assert "MRR at the end of 2026-05" in page
    assert 'id="mrr-chart-data"' in response.content.decode()
    # NRR in May: (75 - 25) / 75 = 66.67 %
    assert "66.67" in page
    export = client.get("/app/analytics/mrr/", {"start": "2026-03", "end": "2026-05", "export": "months"})
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    lines = csv_text(export).splitlines()
    header = "month,currency,start,new,expansion,contraction,churn,reactivation,end,devices,arpd,nrr_percent"
    assert lines[0] == header + ",missing_rates"
    assert lines[2] == "2026-04,EUR,50.00,0.00,25.00,0.00,0.00,0.00,75.00,3,25.00,150.00,"
    export = client.get("/app/analytics/mrr/", {"start": "2026-03", "end": "2026-05", "export": "currencies"})
    assert csv_text(export).splitlines()[3] == "2026-05,EUR,75.00,0.00,0.00,25.00,0.00,0.00,50.00,2,25.00"


def test_a_bad_range_falls_back_to_the_last_twelve_months(tenant: Tenant, make_staff: StaffMaker) -> None:
    response = client_for(tenant, make_staff).get("/app/analytics/mrr/", {"start": "2026-13", "end": "2026-05"})
    assert response.status_code == 200
    assert "A month is YYYY-MM." in text(response)


def test_rates_are_entered_imported_and_exported(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff, Role.FINANCE_ADMIN)
    assert client.get("/app/analytics/exchange-rates/").status_code == 200
    # entered by hand
    response = client.post(
        "/app/analytics/exchange-rates/set/", {"month": "2026-05", "currency": "USD", "rate": "0.92"}
    )
    assert response.status_code == 302
    # a bad rate stays on the form
    response = client.post("/app/analytics/exchange-rates/set/", {"month": "2026-05", "currency": "USD", "rate": "-1"})
    assert response.status_code == 422
    assert "A rate is more than 0." in text(response)
    # a file with a bad line imports nothing
    bad = SimpleUploadedFile("rates.csv", b"month,currency,rate\n2026-04,GBP,1.17\n2026-04,ZZZ,1\n", "text/csv")
    response = client.post("/app/analytics/exchange-rates/import/", {"file": bad})
    assert response.status_code == 422
    assert "lines[3].currency" in text(response)
    assert not ExchangeRate.objects.filter(tenant=tenant, currency="GBP").exists()
    good = SimpleUploadedFile("rates.csv", b"month,currency,rate\n2026-04,GBP,1.17\n2026-05,USD,0.93\n", "text/csv")
    assert client.post("/app/analytics/exchange-rates/import/", {"file": good}).status_code == 302
    assert [
        (r.currency, r.rate, r.source) for r in ExchangeRate.objects.filter(tenant=tenant).order_by("currency")
    ] == [
        ("GBP", Decimal("1.17"), "csv"),
        ("USD", Decimal("0.93"), "csv"),
    ]
    page = text(client.get("/app/analytics/exchange-rates/"))
    assert "0.93" in page
    assert "1.17" in page
    lines = csv_text(client.get("/app/analytics/exchange-rates/", {"export": "csv"})).splitlines()
    assert lines[0] == "month,currency,rate,source,entered_by,entered_at"
    assert [line.split(",")[:4] for line in lines[1:]] == [
        ["2026-05", "USD", "0.93", "csv"],
        ["2026-04", "GBP", "1.17", "csv"],
    ]


def test_the_usage_page_and_its_exports(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff, Role.FINANCE_VIEWER)
    assert client.get("/app/analytics/usage/", {"group_by": "time_band"}).status_code == 200
    for table in ("months", "customers", "devices", "anomalies"):
        response = client.get("/app/analytics/usage/", {"export": table})
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize(("role", "reads", "writes"), [(Role.FINANCE_VIEWER, 200, 403), (Role.SUPPORT_AGENT, 403, 403)])
def test_who_may_open_the_pages(tenant: Tenant, make_staff: StaffMaker, role: str, reads: int, writes: int) -> None:
    client = client_for(tenant, make_staff, role)
    for url in ("/app/analytics/mrr/", "/app/analytics/usage/", "/app/analytics/exchange-rates/"):
        assert client.get(url).status_code == reads
    response = client.post("/app/analytics/exchange-rates/set/", {"month": "2026-05", "currency": "USD", "rate": "1"})
    assert response.status_code == writes
