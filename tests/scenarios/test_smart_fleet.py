"""The Smart Fleet scenario of billing.md, end to end through the API: catalog, customer,
subscription, activation webhooks, usage events, bill runs on 1 April and 1 May 2026. Every line
and total equals the spec."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from catalog.tests.factories import smart_fleet_catalog_posted
from customers.tests.factories import DUPONT
from invoicing.tests.billing_api import eager_celery, ok, paris, send_data_mb
from subscriptions.tests.factories import SMART_FLEET_ACTIVATIONS, SMART_FLEET_SUBSCRIPTION
from tenancy.keys import generate_webhook_secret
from tenancy.models import ApiKeyScope, Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery"]


@pytest.fixture
def fleet(tenant: Tenant, api: APIClient, make_client: Any, django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    secret = generate_webhook_secret()
    tenant.device_cloud_secrets = [secret]
    tenant.save()
    with time_machine.travel(paris(2026, 3, 1, 9), tick=False):
        smart_fleet_catalog_posted(api)
        ok(api.post("/api/v1/customers", DUPONT, format="json"))
    with time_machine.travel(paris(2026, 3, 10, 10), tick=False):
        ok(api.post("/api/v1/subscriptions", SMART_FLEET_SUBSCRIPTION, format="json"))
    cloud = make_client(tenant, ApiKeyScope.DEVICE_CLOUD)
    for device, at in SMART_FLEET_ACTIVATIONS.items():
        body = json.dumps({"type": "device.activated", "data": {"device_id": device, "occurred_at": at.isoformat()}})
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            ok(
                cloud.post(
                    "/api/v1/webhooks/device-cloud",
                    data=body,
                    content_type="application/json",
                    HTTP_WEBHOOK_ID=f"act-{device}",
                    HTTP_WEBHOOK_TIMESTAMP=str(int(at.timestamp())),
                    HTTP_WEBHOOK_SIGNATURE=Webhook(secret).sign(f"act-{device}", at.astimezone(UTC), body),
                )
            )
    return {"ingest": make_client(tenant, ApiKeyScope.INGEST)}


def send_usage(client: APIClient, at: datetime, events: list[tuple[str, str, datetime, int]]) -> None:
    result = send_data_mb(client, at, events)
    assert result["accepted"] == len(events), result


def bill(api: APIClient, at: datetime, billing_date: str, capture: Any) -> dict[str, Any]:
    with time_machine.travel(at, tick=False), capture(execute=True):
        run = ok(api.post("/api/v1/bill_runs", {"billing_date": billing_date}, format="json"))
    run = ok(api.get(f"/api/v1/bill_runs/{run['id']}"))
    assert run["status"] == "completed", run
    [invoice] = ok(api.get(f"/api/v1/invoices?customer=dupont&date_from={billing_date}&date_to={billing_date}"))[
        "results"
    ]
    return invoice


def summary(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(line["type"], line["product"], ",".join(line["devices"]), line["amount"]) for line in invoice["lines"]]


def test_smart_fleet_invoices_of_1_april_and_1_may(
    fleet: dict[str, Any], api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    send_usage(
        fleet["ingest"],
        paris(2026, 3, 31, 12),
        [("a-0001", "A", paris(2026, 3, 16, 11), 800), ("b-0001", "B", paris(2026, 3, 25, 11), 3000)],
    )
    april = bill(api, paris(2026, 4, 1, 0, 30), "2026-04-01", django_capture_on_commit_callbacks)
    assert summary(april) == [
        ("hardware", "eld-200", "A,B,C", "60.00"),  # instalment 1/12, 3 x 20.00
        ("service", "fleet-platform", "A", "13.71"),  # 25.00 x 17/31
        ("service", "fleet-platform", "B", "9.68"),  # 25.00 x 12/31
        ("service", "fleet-platform", "A,B", "50.00"),  # April in advance, 2 x 25.00
        ("usage", "data-overage", "", "17.52"),  # 3800 - 2 x 1024 = 1752 MB x 0.010
    ]
    assert (april["net_total"], april["taxes"][0]["amount"], april["total"]) == ("150.91", "30.18", "181.09")
    assert april["status"] == "draft"

    # an event stamped 2026-03-31T22:30Z is 1 April 00:30 in Paris: April usage
    send_usage(
        fleet["ingest"],
        paris(2026, 4, 30, 12),
        [
            ("a-0002", "A", paris(2026, 4, 1, 0, 30), 5000),
            ("b-0002", "B", paris(2026, 4, 18, 9), 7000),
            ("c-0002", "C", paris(2026, 4, 20, 9), 2000),
        ],
    )
    may = bill(api, paris(2026, 5, 1, 0, 30), "2026-05-01", django_capture_on_commit_callbacks)
    assert summary(may) == [
        ("hardware", "eld-200", "A,B,C", "60.00"),  # instalment 2/12
        ("service", "fleet-platform", "C", "17.50"),  # 25.00 x 21/30
        ("service", "fleet-platform", "A,B,C", "75.00"),  # May in advance
        ("usage", "data-overage", "", "104.64"),  # 14000 - 3 x 1024 = 10928: 10000 x 0.010 + 928 x 0.005
    ]
    assert may["lines"][0]["description"].endswith("instalment 2/12")
    assert (may["net_total"], may["taxes"][0]["amount"], may["total"]) == ("257.14", "51.43", "308.57")


def test_rerunning_a_bill_run_creates_nothing_new(
    fleet: dict[str, Any], api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    first = bill(api, paris(2026, 4, 1, 0, 30), "2026-04-01", django_capture_on_commit_callbacks)
    with time_machine.travel(paris(2026, 4, 1, 1), tick=False), django_capture_on_commit_callbacks(execute=True):
        again = ok(api.post("/api/v1/bill_runs", {"billing_date": "2026-04-01"}, format="json"))
    again = ok(api.get(f"/api/v1/bill_runs/{again['id']}"))
    assert (again["status"], again["progress"], again["created"]) == (
        "completed",
        {"done": 1, "total": 1, "failed": 0},
        0,
    )
    invoices = ok(api.get("/api/v1/invoices?customer=dupont"))["results"]
    assert [i["id"] for i in invoices] == [first["id"]]
    # no usage in March in this test: the usage line shows 0 MB against the allowance, at 0.00
    assert [line["amount"] for line in invoices[0]["lines"]] == ["60.00", "13.71", "9.68", "50.00", "0.00"]
