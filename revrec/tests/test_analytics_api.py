"""GET/PUT /api/v1/exchange_rates, and the reporting-currency part of GET /api/v1/reports/mrr."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from revrec.tests.test_metrics_reporting import smart_fleet_history
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")


def test_rates_are_put_then_listed(api: APIClient) -> None:
    # when
    with time_machine.travel(datetime(2026, 5, 2, 10, 0, tzinfo=PARIS), tick=False):
        response = api.put(
            "/api/v1/exchange_rates",
            {
                "rates": [
                    {"month": "2026-05", "currency": "USD", "rate": "0.915"},
                    {"month": "2026-04", "currency": "GBP", "rate": "1.17"},
                ]
            },
            format="json",
        )
    # then
    assert response.status_code == 200, response.content
    assert [(r["month"], r["currency"], r["rate"], r["source"]) for r in response.json()["rates"]] == [
        ("2026-04", "GBP", "1.17", "manual"),
        ("2026-05", "USD", "0.915", "manual"),
    ]
    body = api.get("/api/v1/exchange_rates").json()
    assert [(r["month"], r["currency"]) for r in body["results"]] == [("2026-05", "USD"), ("2026-04", "GBP")]
    assert body["results"][0]["entered_at"] == "2026-05-02T08:00:00Z"
    body = api.get("/api/v1/exchange_rates", {"from": "2026-05", "currency": "USD"}).json()
    assert [(r["month"], r["currency"]) for r in body["results"]] == [("2026-05", "USD")]


def test_a_bad_rate_is_a_422_naming_the_row_and_writes_nothing(api: APIClient) -> None:
    response = api.put(
        "/api/v1/exchange_rates",
        {
            "rates": [
                {"month": "2026-05", "currency": "USD", "rate": "0.9"},
                {"month": "2026-05", "currency": "GBP", "rate": "-1"},
            ]
        },
        format="json",
    )
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("rates[1].rate", "not_positive")]
    assert api.get("/api/v1/exchange_rates").json()["results"] == []


@pytest.mark.parametrize("query", [{"currency": "usd"}, {"from": "2026-13"}])
def test_a_bad_filter_is_a_400(api: APIClient, query: dict[str, str]) -> None:
    response = api.get("/api/v1/exchange_rates", query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_the_mrr_report_in_the_reporting_currency(tenant: Tenant, api: APIClient) -> None:
    # given: Smart Fleet (EUR, the reporting currency)
    smart_fleet_history(tenant)
    # when
    body = api.get("/api/v1/reports/mrr", {"from": "2026-04", "to": "2026-05"}).json()
    # then: the existing fields are still there, and the converted ones beside them
    assert body["currencies"][0]["months"][0]["end"] == "75.00"
    assert body["missing_rates"] == []
    reporting = body["reporting"]
    assert reporting["currency"] == "EUR"
    april, may = reporting["months"]
    assert (april["month"], april["start"], april["expansion"], april["end"], april["devices"], april["arpd"]) == (
        "2026-04",
        "50.00",
        "25.00",
        "75.00",
        3,
        "25.00",
    )
    assert (april["nrr"], may["nrr"], may["contraction"], may["missing_currencies"]) == ("150.00", "66.67", "25.00", [])
    # April to May: 50.00 -> 50.00
    assert reporting["retention"] == {
        "start": "50.00",
        "expansion": "25.00",
        "contraction": "25.00",
        "churn": "0.00",
        "reactivation": "0.00",
        "end": "50.00",
        "nrr": "100.00",
    }
