"""GET /api/v1/reports/mrr: the report per currency and month, and a bad month refused."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from subscriptions.changes import subscription_change
from subscriptions.tests.factories import ACTOR, smart_fleet, smart_fleet_activate
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")


def month(body: dict[str, Any], index: int) -> dict[str, Any]:
    (eur,) = body["currencies"]
    assert eur["currency"] == "EUR"
    row: dict[str, Any] = eur["months"][index]
    return row


def test_the_smart_fleet_movements_by_month(tenant: Tenant, api: APIClient) -> None:
    # given: A and B active in March, C from 10 April, B removed on 15 May, 25.00 per device
    sub = smart_fleet(tenant)
    smart_fleet_activate(tenant, ("A", "B", "C"))
    removed_at = datetime(2026, 5, 15, 10, 0, tzinfo=PARIS)
    with time_machine.travel(removed_at, tick=False):
        subscription_change(
            subscription=sub, action="remove_devices", params={"device_ids": ["B"]}, actor=ACTOR, at=removed_at
        )
    # when
    response = api.get("/api/v1/reports/mrr", {"from": "2026-03", "to": "2026-05"})
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"], body["reporting_currency"]) == ("2026-03", "2026-05", "EUR")
    march, april, may = (month(body, i) for i in range(3))
    assert (march["month"], march["start"], march["new"], march["end"]) == ("2026-03", "0.00", "50.00", "50.00")
    assert (april["expansion"], april["end"], april["devices"], april["arpd"]) == ("25.00", "75.00", 3, "25.00")
    assert (may["contraction"], may["end"], may["devices"], may["arpd"]) == ("25.00", "50.00", 2, "25.00")
    assert may["customers"] == [
        {
            "customer": "dupont",
            "name": may["customers"][0]["name"],
            "start": "75.00",
            "new": "0.00",
            "expansion": "0.00",
            "contraction": "25.00",
            "churn": "0.00",
            "reactivation": "0.00",
            "end": "50.00",
            "devices": 2,
        }
    ]


def test_without_months_the_last_twelve(tenant: Tenant, api: APIClient) -> None:
    # given: today is 7 December 2026 in Paris; when
    with time_machine.travel(datetime(2026, 12, 7, 10, 0, tzinfo=PARIS), tick=False):
        body = api.get("/api/v1/reports/mrr").json()
    # then: January to December 2026, and no customer
    assert (body["from"], body["to"], body["currencies"]) == ("2026-01", "2026-12", [])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13"}, "from"),
        ({"to": "2026-3"}, "to"),
        ({"from": "2026-03-01"}, "from"),
        ({"to": "March"}, "to"),
        ({"from": "0999-01"}, "from"),
        ({"to": ""}, "to"),
        ({"month": "2026-03"}, "month"),
    ],
)
def test_a_bad_month_is_a_400(api: APIClient, query: dict[str, str], field: str) -> None:
    response = api.get("/api/v1/reports/mrr", query)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"from": "2026-05", "to": "2026-03"}, "after_to"),
        ({"from": "2000-01", "to": "2026-03"}, "too_long"),  # 315 months, more than 120
    ],
)
def test_two_months_that_make_no_report_are_a_422(api: APIClient, query: dict[str, str], code: str) -> None:
    # well-formed months (the schema accepts them) that break a rule the schema cannot state
    response = api.get("/api/v1/reports/mrr", query)
    assert response.status_code == 422, response.content
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("from", code)]
