"""An event's missing dimension takes the value of the device it names, as the device was at the
event's time (pricing.md): a device registered as a probe is priced as a probe without every event
repeating it, and the stored event, current usage and the invoice all read that value."""

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from customers.models import Customer
from invoicing.services import invoice_generate
from invoicing.tests.factories import usage_customer
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from usage.models import UsageRollup
from usage.tests.factories import post_events

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
MARCH_31 = datetime(2026, 3, 31, 12, tzinfo=PARIS)


@pytest.fixture
def customer(tenant: Tenant) -> Customer:
    """Dupont (Paris, billing day 1) since 1 March 2026: data priced by device type (a probe's MB
    0.05, a tracker's 0.01, any other 0.02 by default), devices P (a probe, in region EU), T (a
    tracker) and X (no type)."""
    return usage_customer(
        tenant,
        products={"data": "Data"},
        meters={"mb": {"name": "MB", "aggregation": "sum", "field": "mb", "dimensions": ["device_type", "region"]}},
        components=[
            {
                "product": "data",
                "meter": "mb",
                "charge": {
                    "model": "matrix",
                    "dimensions": ["device_type"],
                    "cells": [
                        {"match": {"device_type": "probe"}, "charge": {"model": "per_unit", "unit_amount": "0.05"}},
                        {"match": {"device_type": "tracker"}, "charge": {"model": "per_unit", "unit_amount": "0.01"}},
                    ],
                    "default": {"model": "per_unit", "unit_amount": "0.02"},
                },
            }
        ],
        devices=[
            {"device_id": "P", "device_type": "probe", "region": "EU"},
            {"device_id": "T", "device_type": "tracker"},
            {"device_id": "X"},
        ],
    )


def event(tid: str, device: str, at: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "code": "mb",
        "device_id": device,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


def post_accepted(client: APIClient, events: list[dict[str, Any]], at: datetime) -> None:
    response = post_events(client, events, at)
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == len(events), response.json()


def groups(client: APIClient, at: datetime) -> list[tuple[dict[str, str], str, str]]:
    with time_machine.travel(at, tick=False):
        response = client.get("/api/v1/customers/dupont/current_usage")
    assert response.status_code == 200, response.content
    [data] = response.json()["subscriptions"][0]["components"]
    return [(g["values"], g["quantity"], g["amount"]) for g in data["detail"]["groups"]]


def stored_properties(tenant: Tenant) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT transaction_id, properties FROM usage_event WHERE tenant_id = %s", [tenant.pk])
        return {tid: json.loads(p) if isinstance(p, str) else p for tid, p in cursor.fetchall()}


def test_a_probe_is_priced_as_a_probe_without_its_events_saying_so(
    tenant: Tenant, customer: Customer, make_client: Any
) -> None:
    client = make_client(tenant, ApiKeyScope.FULL)
    # given: events that carry no device_type, but one that says its own
    post_accepted(
        client,
        [
            event("p1", "P", datetime(2026, 3, 10, 10, tzinfo=PARIS), mb=100),
            event("t1", "T", datetime(2026, 3, 10, 11, tzinfo=PARIS), mb=100),
            event("x1", "X", datetime(2026, 3, 10, 12, tzinfo=PARIS), mb=100),
            event("p2", "P", datetime(2026, 3, 11, 10, tzinfo=PARIS), mb=10, device_type="tracker"),
        ],
        MARCH_31,
    )
    # then: P's 100 MB as a probe 100 x 0.05 = 5.00; T's 100 and P's own "tracker" 10 at 0.01 =
    # 1.10; X, which has no type, by the default 100 x 0.02 = 2.00
    assert groups(client, MARCH_31) == [
        ({"device_type": ""}, "100", "2.00"),
        ({"device_type": "probe"}, "100", "5.00"),
        ({"device_type": "tracker"}, "110", "1.10"),
    ]
    # the stored event carries the values it was priced with (the device's region too), and so do the rollups
    stored = stored_properties(tenant)
    assert stored["p1"] == {"mb": 100, "device_type": "probe", "region": "EU"}
    assert stored["p2"] == {"mb": 10, "device_type": "tracker", "region": "EU"}
    assert stored["x1"] == {"mb": 100}
    assert sorted(sorted(r.dimensions.items()) for r in UsageRollup.objects.filter(tenant=tenant)) == [
        [],
        [("device_type", "probe"), ("region", "EU")],
        [("device_type", "tracker")],
        [("device_type", "tracker"), ("region", "EU")],
    ]
    # and the invoice of 1 April bills what current usage showed: 5.00 + 1.10 + 2.00 = 8.10
    invoice = invoice_generate(
        customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS)
    )
    assert invoice is not None
    [line] = invoice.lines.all()
    assert str(line.amount) == "8.1000"


def test_an_event_before_a_device_changes_type_is_priced_with_the_old_type(
    tenant: Tenant, customer: Customer, make_client: Any
) -> None:
    client = make_client(tenant, ApiKeyScope.FULL)
    # given: on 15 March at noon, probe P becomes a tracker (removed, then added again as a tracker)
    change_at = datetime(2026, 3, 15, 12, tzinfo=PARIS)
    with time_machine.travel(change_at, tick=False):
        for body in (
            {"action": "remove_devices", "device_ids": ["P"], "effective_at": change_at.isoformat()},
            {
                "action": "add_devices",
                "devices": [{"device_id": "P", "device_type": "tracker"}],
                "effective_at": change_at.isoformat(),
            },
        ):
            response = client.post("/api/v1/subscriptions/s/changes", body, format="json")
            assert response.status_code == 201, response.content
    # when: P's events before and after the change arrive together, after it
    post_accepted(
        client,
        [
            event("before", "P", datetime(2026, 3, 10, 10, tzinfo=PARIS), mb=100),
            event("at-change", "P", change_at, mb=20),
            event("after", "P", datetime(2026, 3, 20, 10, tzinfo=PARIS), mb=200),
        ],
        MARCH_31,
    )
    # then: 100 MB as a probe (5.00); 220 MB as a tracker, from the change's instant on (2.20)
    assert groups(client, MARCH_31) == [
        ({"device_type": "probe"}, "100", "5.00"),
        ({"device_type": "tracker"}, "220", "2.20"),
    ]
    stored = stored_properties(tenant)
    assert (stored["before"]["device_type"], stored["before"]["region"]) == ("probe", "EU")
    assert stored["after"] == {"mb": 200, "device_type": "tracker"}
