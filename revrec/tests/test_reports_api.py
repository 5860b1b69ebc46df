"""GET /api/v1/revenue/report, /reports/revenue, /revenue/schedules and /revenue/journal on the
Smart Fleet history of ``reports_data`` (runs of March to May, invoices and a credit note in the
journal), and their bad input refused with problem+json."""

from datetime import datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from revrec.models import Contract
from revrec.runs import recognition_run
from revrec.tests.conftest import PARIS
from revrec.tests.reports_data import AT, MARCH, history  # noqa: F401
from subscriptions.models import Subscription
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("history")
def test_the_revenue_report(api: APIClient) -> None:
    response = api.get("/api/v1/revenue/report", {"from": "2026-03", "to": "2026-05"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"], body["reporting_currency"]) == ("2026-03", "2026-05", "EUR")
    [eur] = body["currencies"]
    assert eur["currency"] == "EUR"
    # March: hardware A + B 490.90, service A 13.72 + B 9.68 = 23.40; 514.30 without usage.
    assert eur["revenue"][0] == {
        "month": "2026-03",
        "hardware": "490.90",
        "service": "23.40",
        "usage": "0.00",
        "fees": "0.00",
        "total": "514.30",
    }
    assert [m["total"] for m in eur["revenue"]] == ["514.30", "48.42", "50.03"]
    # 31 March: asset 514.30; 30 April: the second contract's 100.00 deferred, fleet's 62.72 asset
    # (500.00 billed - 562.72 recognized); 31 May: 1,100.00 + 100.00 - 612.75 = 587.25 deferred.
    assert eur["contract_balances"] == [
        {"month": "2026-03", "deferred_revenue": "0.00", "contract_asset": "514.30", "net": "-514.30"},
        {"month": "2026-04", "deferred_revenue": "100.00", "contract_asset": "62.72", "net": "37.28"},
        {"month": "2026-05", "deferred_revenue": "587.25", "contract_asset": "0.00", "net": "587.25"},
    ]
    # April: 530.00 - 30.00 + 100.00 = 600.00 billed against 48.42 recognized.
    assert eur["billings"][1] == {"month": "2026-04", "billings": "600.00", "revenue": "48.42", "difference": "551.58"}
    waterfall = eur["waterfall"]
    # As of May (run): nothing left of May, June 24.21 + 24.21, ..., March 2027 11.30 + 15.33.
    assert waterfall["as_of"] == "2026-05"
    assert waterfall["months"][:2] == [{"month": "2026-05", "amount": "0.00"}, {"month": "2026-06", "amount": "48.42"}]
    assert waterfall["months"][-1] == {"month": "2027-03", "amount": "26.63"}
    # A and B: 231.60 + 235.63 = 467.23 scheduled; C (not activated): 245.46 + 294.56 = 540.02.
    assert (waterfall["scheduled"], waterfall["unscheduled"], waterfall["remaining"]) == (
        "467.23",
        "540.02",
        "1007.25",
    )


@pytest.mark.usefixtures("history")
def test_the_analytics_revenue_report_has_the_same_figures(api: APIClient) -> None:
    body = api.get("/api/v1/reports/revenue", {"from": "2026-02", "to": "2026-04"}).json()
    assert (body["from"], body["to"], body["reporting_currency"]) == ("2026-02", "2026-04", "EUR")
    [eur] = body["currencies"]
    assert eur["currency"] == "EUR"
    assert [(m["month"], m["hardware"], m["service"], m["total"]) for m in eur["months"]] == [
        ("2026-02", "0.00", "0.00", "0.00"),
        ("2026-03", "490.90", "23.40", "514.30"),
        ("2026-04", "0.00", "48.42", "48.42"),
    ]


def test_without_months_the_last_twelve(api: APIClient) -> None:
    with time_machine.travel(datetime(2026, 12, 7, 10, 0, tzinfo=PARIS), tick=False):
        for path in ("/api/v1/revenue/report", "/api/v1/reports/revenue"):
            body = api.get(path).json()
            assert (body["from"], body["to"], body["currencies"]) == ("2026-01", "2026-12", [])


@pytest.mark.usefixtures("history")
def test_a_subscriptions_schedules(api: APIClient, django_assert_max_num_queries: Any) -> None:
    with django_assert_max_num_queries(12):  # authentication and the tenant's context included
        response = api.get("/api/v1/revenue/schedules", {"subscription": "dupont-fleet"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["subscription"], body["currency"], body["transaction_price"]) == ("dupont-fleet", "EUR", "1620.00")
    # Recognized: 514.30 + 48.42 + 50.03 = 612.75 of 1,620.00 allocated.
    assert (body["allocated"], body["recognized"]) == ("1620.00", "612.75")
    by_line = {(o["kind"], o["device_id"]): o for o in body["obligations"]}
    hardware_a = by_line[("hardware", "A")]
    assert (hardware_a["pattern"], hardware_a["allocated"], hardware_a["recognized_on"]) == (
        "point_in_time",
        "245.45",
        "2026-03-15",
    )
    assert hardware_a["schedule"] == [{"month": "2026-03", "planned": "245.45", "recognized": "245.45"}]
    service_a = by_line[("service", "A")]
    assert (service_a["starts_on"], service_a["ends_on"], service_a["remaining"]) == (
        "2026-03-15",
        "2027-03-15",
        "231.60",  # 294.54 - 62.94
    )
    # March 13.72, April 24.21, May 25.01 planned and posted; June planned 87.15 - 62.94 = 24.21.
    assert service_a["schedule"][:4] == [
        {"month": "2026-03", "planned": "13.72", "recognized": "13.72"},
        {"month": "2026-04", "planned": "24.21", "recognized": "24.21"},
        {"month": "2026-05", "planned": "25.01", "recognized": "25.01"},
        {"month": "2026-06", "planned": "24.21", "recognized": "0.00"},
    ]
    assert (len(service_a["schedule"]), service_a["schedule"][-1]["planned"]) == (13, "11.30")
    hardware_c = by_line[("hardware", "C")]
    assert (hardware_c["recognized_on"], hardware_c["schedule"], hardware_c["remaining"]) == (None, [], "245.46")


def test_a_late_activation_posts_in_another_month_than_planned(
    tenant: Tenant, fleet_contract: Contract, api: APIClient
) -> None:
    # given: March never run, April's run catches March up
    recognition_run(tenant_id=tenant.pk, month=MARCH.replace(month=4), at=AT)
    # when
    body = api.get("/api/v1/revenue/schedules", {"subscription": "dupont-fleet"}).json()
    # then: hardware A is planned in March and posted in April
    [hardware_a] = [o for o in body["obligations"] if (o["kind"], o["device_id"]) == ("hardware", "A")]
    assert hardware_a["schedule"] == [
        {"month": "2026-03", "planned": "245.45", "recognized": "0.00"},
        {"month": "2026-04", "planned": "0.00", "recognized": "245.45"},
    ]


def test_schedules_of_an_unknown_subscription_or_one_without_contract(api: APIClient, fleet: Subscription) -> None:
    unknown = api.get("/api/v1/revenue/schedules", {"subscription": "nobody"})
    assert unknown.status_code == 404
    assert unknown["Content-Type"] == "application/problem+json"
    assert unknown.json()["code"] == "subscription_not_found"
    # the fleet's contract is not built yet
    pending = api.get("/api/v1/revenue/schedules", {"subscription": "dupont-fleet"})
    assert (pending.status_code, pending.json()["code"]) == (404, "revenue_contract_not_found")
    assert pending.json()["detail"] == "Subscription 'dupont-fleet' has no revenue contract yet."
    missing = api.get("/api/v1/revenue/schedules")
    assert (missing.status_code, missing.json()["code"]) == (400, "invalid_query")
    assert missing.json()["errors"][0]["field"] == "subscription"


@pytest.mark.usefixtures("history")
def test_the_journal_of_a_period(api: APIClient, django_assert_max_num_queries: Any) -> None:
    with django_assert_max_num_queries(12):
        response = api.get("/api/v1/revenue/journal", {"period": "2026-04"})
    assert response.status_code == 200, response.content
    body = response.json()
    # In date order: the fleet's invoice (1 April), the second contract's (10 April), the credit
    # note (20 April), April's recognition (30 April).
    entries = body["results"]
    assert [(e["date"], e["source_type"], e["subscription"]) for e in entries] == [
        ("2026-04-01", "invoice", "dupont-fleet"),
        ("2026-04-10", "invoice", "dupont-second"),
        ("2026-04-20", "invoice", "dupont-fleet"),
        ("2026-04-30", "recognition", "dupont-fleet"),
    ]
    invoice = entries[0]
    # 530.00 net + 106.00 VAT = 636.00 gross.
    assert invoice["lines"] == [
        {"account": "receivable", "debit": "636.00", "credit": "0.00"},
        {"account": "tax_payable", "debit": "0.00", "credit": "106.00"},
        {"account": "contract_balance", "debit": "0.00", "credit": "530.00"},
    ]
    assert (invoice["period"], invoice["currency"], invoice["debit"], invoice["credit"]) == (
        "2026-04",
        "EUR",
        "636.00",
        "636.00",
    )
    recognition = entries[3]
    assert recognition["lines"] == [
        {"account": "contract_balance", "debit": "48.42", "credit": "0.00"},
        {"account": "revenue_service", "debit": "0.00", "credit": "48.42"},
    ]
    assert body["next"] is None
    only = api.get("/api/v1/revenue/journal", {"period": "2026-04", "source_type": "recognition"}).json()
    assert [e["date"] for e in only["results"]] == ["2026-04-30"]


@pytest.mark.usefixtures("history")
def test_the_journal_pages(api: APIClient) -> None:
    # All periods: March's run, April's four entries, May's invoice and run: 7, by pages of 4.
    first = api.get("/api/v1/revenue/journal", {"limit": 4}).json()
    assert [e["date"] for e in first["results"]] == ["2026-03-31", "2026-04-01", "2026-04-10", "2026-04-20"]
    second = api.get("/api/v1/revenue/journal", {"limit": 4, "cursor": first["next"]}).json()
    assert [e["date"] for e in second["results"]] == ["2026-04-30", "2026-05-05", "2026-05-31"]
    assert second["next"] is None


@pytest.mark.parametrize("path", ["/api/v1/revenue/report", "/api/v1/reports/revenue"])
@pytest.mark.parametrize(
    ("query", "status", "field", "code"),
    [
        ({"from": "2026-05", "to": "2026-03"}, 422, "from", "after_to"),
        ({"from": "2016-03", "to": "2026-03"}, 422, "from", "too_long"),  # 121 months
        ({"from": "2026-13"}, 400, "from", "invalid"),
        ({"to": "2026-3"}, 400, "to", "invalid"),
    ],
)
def test_a_range_that_makes_no_report(
    api: APIClient, path: str, query: dict[str, str], status: int, field: str, code: str
) -> None:
    response = api.get(path, query)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == (field, code)


def test_ten_years_is_the_longest_report(api: APIClient) -> None:
    # 2017-04 to 2027-03: 120 months.
    body = api.get("/api/v1/revenue/report", {"from": "2017-04", "to": "2027-03"}).json()
    assert (body["from"], body["to"]) == ("2017-04", "2027-03")


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"period": "2026-13"}, 400, "period"),
        ({"period": "April"}, 400, "period"),
        ({"source_type": "x"}, 422, "source_type"),
    ],
)
def test_a_bad_journal_filter(api: APIClient, query: dict[str, str], status: int, field: str) -> None:
    response = api.get("/api/v1/revenue/journal", query)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
