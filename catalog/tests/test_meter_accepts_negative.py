"""A meter's ``accepts_negative`` option through the API: off by default, set at creation or later,
and refused on meters that read no number from their events."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


def test_a_meter_refuses_negative_values_unless_it_says_so(api: APIClient, tenant: Tenant) -> None:
    # given / when: a data meter with the default, and a net-energy meter that accepts them
    data = api.post("/api/v1/meters", {"code": "mb", "name": "MB", "aggregation": "sum", "field": "mb"}, format="json")
    energy = api.post(
        "/api/v1/meters",
        {"code": "kwh", "name": "Net kWh", "aggregation": "sum", "field": "kwh", "accepts_negative": True},
        format="json",
    )
    # then
    assert (data.status_code, energy.status_code) == (201, 201), (data.content, energy.content)
    assert (data.json()["accepts_negative"], energy.json()["accepts_negative"]) == (False, True)
    assert api.get("/api/v1/meters/kwh").json()["accepts_negative"] is True


def test_accepts_negative_can_change_and_the_change_is_audited(api: APIClient, tenant: Tenant) -> None:
    api.post("/api/v1/meters", {"code": "temp", "name": "Temp", "aggregation": "max", "field": "c"}, format="json")
    # when
    response = api.patch("/api/v1/meters/temp", {"accepts_negative": True}, format="json")
    # then
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["accepts_negative"]) == ("Temp", True)
    entry = AuditLogEntry.objects.get(tenant=tenant, action="meter.updated")
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["accepts_negative"], entry.after["accepts_negative"]) == (False, True)


@pytest.mark.parametrize("aggregation", ["count", "unique_count"])
def test_a_meter_without_values_cannot_accept_negative_ones(api: APIClient, aggregation: str) -> None:
    body: dict[str, Any] = {"code": "m", "name": "M", "aggregation": aggregation, "accepts_negative": True}
    if aggregation == "unique_count":
        body["field"] = "iccid"
    response = api.post("/api/v1/meters", body, format="json")
    assert response.status_code == 422, response.content
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("accepts_negative", "not_allowed")
    assert error["message"] == (
        "A %s meter reads no number from its events; only sum, max and latest meters can accept negative values."
        % aggregation
    )


def test_accepts_negative_is_a_boolean(api: APIClient) -> None:
    response = api.post(
        "/api/v1/meters",
        {"code": "m", "name": "M", "aggregation": "sum", "field": "mb", "accepts_negative": "sometimes"},
        format="json",
    )
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["accepts_negative"]
